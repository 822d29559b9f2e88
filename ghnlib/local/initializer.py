r"""Local initialisation: one generative kernel model per convolutional
layer, sampled slice by slice."""
import dataclasses
import json
import math
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ghnlib.errors import GhnlibError
from ghnlib.local.code_prior import CodePrior
from ghnlib.local.fit import (CODE_PRIOR_RECIPE, VAE_RECIPE, VQVAE_RECIPE,
                              fit_kernel_model)
from ghnlib.local.kernel_vae import KernelVAE
from ghnlib.local.kernel_vqvae import KernelVQVAE
from ghnlib.local.weight_dataset import build_weight_datasets, conv_layers
from ghnlib.models import get_model_for_input
from ghnlib.utils.checkpoint import atomic_write, read_safetensors
from ghnlib.zoo import load_zoo

__all__ = ['LocalInitializer', 'InitReport', 'KINDS']

_FORMAT = 'ghnlib.LocalInitializer'
_FORMAT_VERSION = 1
FILE = 'local_init.safetensors'
KINDS = ('vae', 'vqvae')


def _model_class(kind: str):
    if kind == 'vae':
        return KernelVAE
    if kind == 'vqvae':
        return KernelVQVAE
    raise GhnlibError(f"unknown local model kind {kind!r}; use one of {KINDS}")


@dataclasses.dataclass
class LayerSampler:
    """A layer's kernel model and the statistics that standardised its
    slices (samples are mapped back with them)."""
    model: nn.Module
    shape: Tuple[int, int, int, int]
    mean: float
    std: float

    def sample(self, generator: Optional[torch.Generator] = None) -> Tensor:
        out, inp, kh, kw = self.shape

        options = {}
        if isinstance(self.model, KernelVAE):
            # A draw of the generative model p(x) = ∫ p(x|z) p(z) dz, not just
            # decoder means: a VAE that learned little would otherwise
            # return nearly the same kernel everywhere.
            options['likelihood_noise'] = True
        with torch.no_grad():
            slices = self.model.sample(out * inp, generator=generator,
                                       **options)
        return (slices * self.std + self.mean).reshape(self.shape)


@dataclasses.dataclass
class InitReport:
    """What :meth:`LocalInitializer.init_` did: the conv weights it sampled
    and the ones that kept their values, with the reason."""
    sampled: List[str]
    kept: Dict[str, str]


class LocalInitializer:
    r"""Initialises a network's convolutional layers with kernels sampled
    from per-layer generative models (`"From Pointwise to Powerhouse"
    <https://arxiv.org/abs/2310.16695>`_, section 3.1, after the `Deep Weight
    Prior <https://arxiv.org/abs/1810.06943>`_): a :class:`KernelVAE` or a
    :class:`KernelVQVAE` (with its autoregressive code prior: VQVAE*) per
    layer, trained on that layer's kernel slices over a model zoo.

    Slices are standardised per layer before training,
    :math:`\tilde{\mathbf{s}} = (\mathbf{s} - \mu_\ell) / \sigma_\ell`, and
    samples mapped back, so the models see unit-scale data and the samples
    keep the zoo's scale. With :obj:`calibrate='he'` each layer's sampled
    kernel is rescaled to He's variance,
    :math:`\mathbf{W} \leftarrow \mathbf{W} \sqrt{2 / \mathrm{fan\_in}} /
    \mathrm{RMS}(\mathbf{W})`.

    Args:
        arch (str): The architecture the zoo was trained on.
        kind (str): :obj:`'vae'` or :obj:`'vqvae'`.
        layers (dict): Parameter name → :class:`LayerSampler`.
        skipped (dict, optional): Conv layers without a model, and why.
            (default: :obj:`None`)
        histories (dict, optional): Per layer, the training history of its
            model (:func:`~ghnlib.local.fit.fit_kernel_model`).
            (default: :obj:`None`)
    """
    def __init__(self, arch: str, kind: str, layers: Dict[str, LayerSampler],
                 skipped: Optional[Dict[str, str]] = None,
                 histories: Optional[Dict[str, dict]] = None):
        _model_class(kind)
        self.arch, self.kind = arch, kind
        self.layers = layers
        self.skipped = dict(skipped or {})
        self.histories = dict(histories or {})
        self.last_report: Optional[InitReport] = None

    @classmethod
    def fit(cls, zoo_dir: Union[str, os.PathLike], arch: str,
            kind: str = 'vae', *, prune_fraction: float = 0.05,
            epochs: Optional[int] = None, max_slices: Optional[int] = None,
            model_options: Optional[dict] = None, prior: bool = True,
            input_shape: Sequence[int] = (1, 3, 32, 32), seed: int = 0,
            progress: bool = False) -> 'LocalInitializer':
        r"""Builds the weight datasets of the zoo in :obj:`zoo_dir` and
        trains one kernel model per convolutional layer with the paper's
        recipe (Adam, linearly decreasing learning rate, batch 128).

        Args:
            zoo_dir (str): A folder written by
                :func:`~ghnlib.zoo.build_zoo`.
            arch (str): Its architecture (checked against the zoo).
            kind (str, optional): :obj:`'vae'` or :obj:`'vqvae'`.
                (default: :obj:`'vae'`)
            prune_fraction (float, optional): Share of smallest-norm slices
                dropped per layer. (default: :obj:`0.05`)
            epochs (int, optional): Training epochs per layer model.
                (default: :obj:`None`, the recipe's)
            max_slices (int, optional): Train each layer model on at most
                this many slices (a seeded random subset). (default:
                :obj:`None`, all)
            model_options (dict, optional): Constructor options of the
                kernel model. (default: :obj:`None`)
            prior (bool, optional): For :obj:`'vqvae'`, also fit the
                autoregressive code prior (VQVAE*); otherwise codes are
                sampled uniformly. (default: :obj:`True`)
            input_shape (Sequence[int], optional): Example input for the
                graph conversion. (default: :obj:`(1, 3, 32, 32)`)
            seed (int, optional): Seeds the models and their training.
                (default: :obj:`0`)
            progress (bool, optional): Progress bars. (default: :obj:`False`)
        """

        model_class = _model_class(kind)
        members = load_zoo(zoo_dir, arch)
        if not members:
            raise GhnlibError(f"the zoo in '{zoo_dir}' has no members yet")
        datasets, skipped = build_weight_datasets(
            [m.state_dict() for m in members],
            get_model_for_input(arch, input_shape),
            prune_fraction=prune_fraction, input_shape=input_shape)
        recipe = dict(VAE_RECIPE if kind == 'vae' else VQVAE_RECIPE)
        if epochs is not None:
            recipe['epochs'] = epochs
        layers, histories = {}, {}
        for index, (name, dataset) in enumerate(datasets.items()):
            slices = dataset.slices
            generator = torch.Generator().manual_seed(seed + index)
            if max_slices is not None and slices.size(0) > max_slices:
                pick = torch.randperm(slices.size(0), generator=generator)
                slices = slices.index_select(0, pick[:max_slices])
            mean, std = float(slices.mean()), float(slices.std())
            standard = (slices - mean) / max(std, 1e-12)
            torch.manual_seed(seed + index)
            kernel = dataset.layer.kernel_size[0]
            model = model_class(kernel_size=kernel, **(model_options or {}))
            histories[name] = fit_kernel_model(
                model, standard, seed=seed + index, progress=progress,
                **recipe)
            if kind == 'vqvae' and prior:
                model.eval()
                with torch.no_grad():
                    codes = model.encode(standard)
                model.prior = CodePrior(num_positions=codes.size(1),
                                        num_embeddings=model.config['num_embeddings'])
                prior_recipe = dict(CODE_PRIOR_RECIPE)
                if 'epochs' in recipe:
                    prior_recipe['epochs'] = recipe['epochs']
                fit_kernel_model(model.prior, codes, seed=seed + index,
                                 progress=progress, **prior_recipe)
            model.eval()
            layers[name] = LayerSampler(model, dataset.layer.shape, mean, std)
        return cls(arch, kind, layers, skipped, histories)

    # -- sampling --------------------------------------------------------
    @torch.no_grad()
    def init_(self, model: nn.Module,
              generator: Optional[torch.Generator] = None, *,
              calibrate: Optional[str] = None,
              input_shape: Sequence[int] = (1, 3, 32, 32)) -> nn.Module:
        """Fills every convolutional layer of :obj:`model` that has a kernel
        model with sampled slices and returns the model; other parameters
        keep their values. Which layers were sampled and which kept their
        values (and why) is in :attr:`last_report`; kept conv layers are
        also reported with a warning.

        Args:
            model (nn.Module): A model of :attr:`arch`'s structure.
            generator (torch.Generator, optional): Source of all randomness.
                (default: :obj:`None`)
            calibrate (str, optional): :obj:`'he'` rescales each sampled
                layer to He's variance; :obj:`None` keeps the sampled scale
                (the paper). (default: :obj:`None`)
            input_shape (Sequence[int], optional): Example input for finding
                the conv layers. (default: :obj:`(1, 3, 32, 32)`)
        """
        if calibrate not in (None, 'he'):
            raise GhnlibError(f"calibrate must be None or 'he', got "
                              f'{calibrate!r}')
        params = dict(model.named_parameters())
        sampled, kept = [], {}
        for layer in conv_layers(model, input_shape):
            sampler = self.layers.get(layer.name)
            if sampler is None:
                kept[layer.name] = self.skipped.get(
                    layer.name, f'no kernel model for this layer (this '
                    f'initialiser was fit on {self.arch})')
                continue
            if sampler.shape != layer.shape:
                kept[layer.name] = (f'shape {layer.shape} differs from the '
                                    f"zoo's {sampler.shape}")
                continue
            weight = sampler.sample(generator)
            if calibrate == 'he':
                fan_in = math.prod(layer.shape[1:])
                rms = weight.pow(2).mean().sqrt().clamp_min(1e-12)
                weight = weight * (math.sqrt(2.0 / fan_in) / rms)
            target = params[layer.name]
            target.copy_(weight.to(target.dtype))
            sampled.append(layer.name)
        self.last_report = InitReport(sampled, kept)
        if kept:
            warnings.warn(f'{len(kept)} convolutional layer(s) kept their '
                          f'initialisation: ' + '; '.join(
                              f'{n}: {why}' for n, why in kept.items()),
                          stacklevel=2)
        return model

    # -- files -----------------------------------------------------------
    def save(self, directory: Union[str, os.PathLike]) -> None:
        """Writes every layer model and the config to
        :obj:`directory/local_init.safetensors`, atomically."""
        from safetensors.torch import save_file

        state, layers = {}, {}
        for name, sampler in self.layers.items():
            for key, value in sampler.model.state_dict().items():
                state[f'{name}/{key}'] = value.detach().contiguous().cpu()
            layers[name] = dict(
                shape=list(sampler.shape), mean=sampler.mean, std=sampler.std,
                config=sampler.model.config,
                history=self.histories.get(name))
        metadata = {'format': _FORMAT, 'format_version': str(_FORMAT_VERSION),
                    'config': json.dumps(dict(arch=self.arch, kind=self.kind,
                                              layers=layers,
                                              skipped=self.skipped))}
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        atomic_write(os.path.join(directory, FILE),
                     lambda tmp: save_file(state, tmp, metadata=metadata))

    @classmethod
    def load(cls, directory: Union[str, os.PathLike]) -> 'LocalInitializer':
        """Reads what :meth:`save` wrote; refuses anything else and never
        half-loads."""
        path = os.path.join(os.fspath(directory), FILE)
        if not os.path.isfile(path):
            raise GhnlibError(f"no local initialiser in '{directory}' (expected "
                              f"{FILE}); train one with `ghnlib train-local`")
        metadata, state = read_safetensors(path, 'local initialiser',
                                           file_format=_FORMAT)
        if metadata.get('format_version') != str(_FORMAT_VERSION):
            raise GhnlibError(f"'{path}' is not a local initialiser of format "
                              f'{_FORMAT_VERSION}')
        try:
            config = json.loads(metadata['config'])
            model_class = _model_class(config['kind'])
            layers = {}
            for name, entry in config['layers'].items():
                model = model_class(**entry['config'])
                prefix = f'{name}/'
                own = {k[len(prefix):]: v for k, v in state.items()
                       if k.startswith(prefix)}
                model.load_state_dict(own, strict=True)
                if not all(torch.isfinite(v).all() for v in own.values()):
                    raise GhnlibError(f"layer '{name}' holds NaN or inf")
                layers[name] = LayerSampler(model.eval(), tuple(entry['shape']),
                                            float(entry['mean']),
                                            float(entry['std']))
        except GhnlibError:
            raise
        except Exception as error:
            raise GhnlibError(f"'{path}' does not match its config "
                              f'({type(error).__name__}: {error})') from error
        histories = {name: entry['history'] for name, entry in
                     config['layers'].items() if entry.get('history')}
        return cls(config['arch'], config['kind'], layers, config['skipped'],
                   histories)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(arch={self.arch!r}, '
                f'kind={self.kind!r}, layers={len(self.layers)})')
