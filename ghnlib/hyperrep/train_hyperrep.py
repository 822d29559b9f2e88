r"""Fitting and saving a hyper-representation in one call, for the command
line."""
import os
from typing import Optional, Sequence, Union

from ghnlib.hyperrep.hyper_representation import HyperRepresentation

__all__ = ['train_hyperrep']


def train_hyperrep(zoo_dir: Union[str, os.PathLike],
                   out_dir: Union[str, os.PathLike], *,
                   arch: Optional[str] = None, epochs: int = 40,
                   batch_size: int = 64, lr: float = 1e-3,
                   min_epoch: float = 1.0, permute: bool = True,
                   noise: float = 0.0, contrast_weight: float = 0.0,
                   latent_dim: int = 32, d_model: int = 64,
                   top_fraction: float = 0.3,
                   input_shape: Optional[Sequence[int]] = None,
                   seed: int = 0, progress: bool = True
                   ) -> HyperRepresentation:
    r"""Fits a :class:`HyperRepresentation` on the zoo in :obj:`zoo_dir`
    (:meth:`HyperRepresentation.fit`), saves it to :obj:`out_dir` and
    returns it; :obj:`ghnlib train-hyperrep ZOO --out DIR` runs it, and
    :obj:`--init hyperrep:DIR` uses the result.

    Args:
        zoo_dir (str): A zoo built with :obj:`keep_epochs=True`.
        out_dir (str): Where :obj:`hyperrep.safetensors` goes.
        arch (str, optional): The zoo's architecture, checked.
            (default: :obj:`None`)
        epochs (int, optional): (default: :obj:`40`)
        batch_size (int, optional): (default: :obj:`64`)
        lr (float, optional): (default: :obj:`1e-3`)
        min_epoch (float, optional): Earliest zoo epoch learned from.
            (default: :obj:`1.0`)
        permute (bool, optional): Permutation augmentation.
            (default: :obj:`True`)
        noise (float, optional): Input noise of the denoising target.
            (default: :obj:`0.0`)
        contrast_weight (float, optional): Weight of the contrastive term.
            (default: :obj:`0.0`)
        latent_dim (int, optional): Latent entries per token.
            (default: :obj:`32`)
        d_model (int, optional): Transformer width. (default: :obj:`64`)
        top_fraction (float, optional): Default share of the zoo the KDE
            samples near. (default: :obj:`0.3`)
        input_shape (Sequence[int], optional): The members' input, if the zoo
            did not record it. (default: :obj:`None`)
        seed (int, optional): (default: :obj:`0`)
        progress (bool, optional): (default: :obj:`True`)
    """
    hyper = HyperRepresentation.fit(
        zoo_dir, arch, epochs=epochs, batch_size=batch_size, lr=lr,
        min_epoch=min_epoch, permute=permute, noise=noise,
        contrast_weight=contrast_weight,
        model_options=dict(latent_dim=latent_dim, d_model=d_model),
        sampling=dict(top_fraction=top_fraction), input_shape=input_shape,
        seed=seed, progress=progress)
    hyper.save(out_dir)
    return hyper
