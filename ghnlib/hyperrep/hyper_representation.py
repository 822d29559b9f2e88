r"""Hyper-representations: a weight-space autoencoder over a model zoo whose
latent space is sampled with a KDE to initialise new networks."""
import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep.loss import layerwise_mse, nt_xent
from ghnlib.hyperrep.model import WeightAutoencoder
from ghnlib.hyperrep.sampling import GaussianKDE, top_fraction_indices
from ghnlib.hyperrep.tokenizer import WeightTokenizer
from ghnlib.hyperrep.zoo_weights import load_zoo_weights
from ghnlib.models import get_model_for_input
from ghnlib.utils.checkpoint import atomic_write, read_safetensors

__all__ = ['HyperRepresentation', 'FILE']

_FORMAT = 'ghnlib.HyperRepresentation'
_FORMAT_VERSION = 1
#: The one file :meth:`HyperRepresentation.save` writes into its folder.
FILE = 'hyperrep.safetensors'

#: What :meth:`HyperRepresentation.sample` does unless told otherwise.
DEFAULT_SAMPLING = dict(top_fraction=0.3, bandwidth='scott',
                        dimensionwise=False)

PathLike = Union[str, os.PathLike]


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class HyperRepresentation:
    r"""A generative model of a zoo's weights, after `"Hyper-Representations
    as Generative Models: Sampling Unseen Neural Network Weights"
    <https://arxiv.org/abs/2209.14733>`_ (Schürholt et al., NeurIPS 2022).

    Every network is a sequence of neuron tokens
    (:class:`WeightTokenizer`), standardised per layer,
    :math:`\tilde{\mathbf{w}}^{(\ell)} = (\mathbf{w}^{(\ell)} - \mu_\ell) /
    \sigma_\ell` with the zoo's statistics; a :class:`WeightAutoencoder`
    learns to reconstruct them (:func:`layerwise_mse`, plus an optional
    :func:`nt_xent` term between two augmented views). New weights are
    decoded from latents drawn from a :class:`GaussianKDE` over the latents
    of the zoo's checkpoints (:math:`S_{\mathrm{KDE}}`), or of its most
    accurate share (:math:`S_{\mathrm{KDE30}}` for 30 %):

    .. math::
        \mathbf{z} \sim \hat{p}_{\mathrm{KDE}}(\{\mathbf{z}_i : i \in
        \mathrm{top}\}), \qquad
        \mathbf{w} = \mathrm{detok}\left(\mu + \sigma \odot
        \mathrm{dec}(\mathbf{z})\right).

    Build one with :meth:`fit`; keep it with :meth:`save` / :meth:`load`.

    Args:
        arch (str): The zoo's architecture (registry name).
        input_shape (Sequence[int]): The input the zoo was trained on, for
            reading a model's graph.
        tokenizer (WeightTokenizer): Token layout of :obj:`arch`.
        autoencoder (WeightAutoencoder): The trained autoencoder.
        layer_mean (Tensor): :math:`\mu_\ell`, shape :math:`[L]`.
        layer_std (Tensor): :math:`\sigma_\ell`, shape :math:`[L]`.
        anchor_latents (Tensor): Latents of the zoo's checkpoints,
            :math:`[K, T d_z]`.
        anchor_accuracy (Tensor): Their validation accuracy, :math:`[K]`.
        sampling (dict, optional): Defaults of :meth:`sample`
            (:obj:`top_fraction`, :obj:`bandwidth`, :obj:`dimensionwise`).
            (default: :obj:`None`, the top 30 %, Scott's rule, joint: a
            latent of per-neuron parts is not aligned across networks, so
            mixing coordinates of different networks, the authors'
            dimension-wise KDE, decodes to chance-level networks here)
        history (dict, optional): What :meth:`fit` measured.
            (default: :obj:`None`)
    """
    def __init__(self, arch: str, input_shape: Sequence[int],
                 tokenizer: WeightTokenizer, autoencoder: WeightAutoencoder,
                 layer_mean: Tensor, layer_std: Tensor,
                 anchor_latents: Tensor, anchor_accuracy: Tensor,
                 sampling: Optional[dict] = None,
                 history: Optional[dict] = None):
        self.arch = arch
        self.input_shape = tuple(int(s) for s in input_shape)
        self.tokenizer = tokenizer
        self.autoencoder = autoencoder.eval()
        self.layer_mean = layer_mean.detach().float()
        self.layer_std = layer_std.detach().float()
        self.anchor_latents = anchor_latents.detach().float()
        self.anchor_accuracy = anchor_accuracy.detach().double()
        self.sampling = {**DEFAULT_SAMPLING, **(sampling or {})}
        self.history = dict(history or {})
        if autoencoder.num_tokens != tokenizer.num_tokens or \
                autoencoder.token_width != tokenizer.width:
            raise GhnlibError('the autoencoder and the tokenizer disagree on '
                              'the number or width of tokens')
        if self.anchor_latents.dim() != 2 or self.anchor_latents.size(1) != \
                tokenizer.num_tokens * autoencoder.latent_dim or \
                self.anchor_latents.size(0) != self.anchor_accuracy.numel():
            raise GhnlibError('anchor latents must be [K, T * latent_dim] '
                              'with one accuracy each')

    # -- normalisation -----------------------------------------------------
    def _token_stats(self) -> Tuple[Tensor, Tensor]:
        index = self.tokenizer.layer_index
        return (self.layer_mean[index].view(-1, 1),
                self.layer_std[index].view(-1, 1))

    def _normalize(self, tokens: Tensor) -> Tensor:
        mean, std = self._token_stats()
        return (tokens - mean) / std * self.tokenizer.mask

    def _denormalize(self, tokens: Tensor) -> Tensor:
        mean, std = self._token_stats()
        return (tokens * std + mean) * self.tokenizer.mask

    def _tokens(self, state_dicts: Sequence[Dict[str, Tensor]]) -> Tensor:
        return torch.stack([self.tokenizer.tokenize(
            {k: v.float() for k, v in state.items()})[0]
            for state in state_dicts])

    # -- fitting -----------------------------------------------------------
    @classmethod
    def fit(cls, zoo_dir: PathLike, arch: Optional[str] = None, *,
            epochs: int = 40, batch_size: int = 64, lr: float = 1e-3,
            weight_decay: float = 1e-4, min_epoch: float = 1.0,
            permute: bool = True, noise: float = 0.0,
            contrast_weight: float = 0.0, temperature: float = 0.1,
            holdout_fraction: float = 0.1,
            model_options: Optional[dict] = None,
            sampling: Optional[dict] = None,
            input_shape: Optional[Sequence[int]] = None, seed: int = 0,
            progress: bool = False) -> 'HyperRepresentation':
        r"""Trains a hyper-representation on the checkpoints of the zoo in
        :obj:`zoo_dir` (:func:`load_zoo_weights`) with AdamW, a linear
        warm-up and cosine decay of the learning rate.

        The loss is
        :math:`\mathcal{L}_{\mathrm{MSE}} + \gamma\, \mathcal{L}_{\mathrm{c}}`
        (:func:`layerwise_mse`, :func:`nt_xent` between two views). Every
        batch is augmented with function-preserving neuron permutations
        (:meth:`WeightTokenizer.permute`) and, optionally, Gaussian noise on
        the encoder's input (a denoising target). The contrastive term is
        off by default: on small zoos it costs a second forward pass and did
        not improve the sampled networks in our runs.

        Args:
            zoo_dir (str): A folder written by
                :func:`~ghnlib.zoo.build_zoo` (ideally with
                :obj:`keep_epochs=True`).
            arch (str, optional): Its architecture, checked against the zoo.
                (default: :obj:`None`, the zoo's)
            epochs (int, optional): Passes over the checkpoints.
                (default: :obj:`40`)
            batch_size (int, optional): (default: :obj:`64`)
            lr (float, optional): Peak learning rate. (default: :obj:`1e-3`)
            weight_decay (float, optional): (default: :obj:`1e-4`)
            min_epoch (float, optional): Earliest zoo epoch learned from.
                (default: :obj:`1.0`)
            permute (bool, optional): Permutation augmentation (only for
                architectures where it preserves the function).
                (default: :obj:`True`)
            noise (float, optional): Standard deviation of the noise added
                to the standardised input tokens. (default: :obj:`0.0`)
            contrast_weight (float, optional): :math:`\gamma`.
                (default: :obj:`0.0`)
            temperature (float, optional): Of :func:`nt_xent`.
                (default: :obj:`0.1`)
            holdout_fraction (float, optional): Share of members (all their
                checkpoints) held out to measure reconstruction on unseen
                networks (:obj:`history['val_loss']`); they still serve as
                KDE anchors. (default: :obj:`0.1`)
            model_options (dict, optional): Options of
                :class:`WeightAutoencoder`. (default: :obj:`None`)
            sampling (dict, optional): Defaults of :meth:`sample`.
                (default: :obj:`None`)
            input_shape (Sequence[int], optional): The members' input.
                (default: :obj:`None`, as the zoo recorded it)
            seed (int, optional): Seeds initialisation, batching and
                augmentation. (default: :obj:`0`)
            progress (bool, optional): A progress bar. (default: :obj:`False`)

        Returns:
            The fitted :class:`HyperRepresentation`; its :attr:`history`
            holds :obj:`loss` and :obj:`val_loss` (the
            :func:`layerwise_mse` of the training and held-out checkpoints,
            before training and after every epoch), :obj:`contrast` (the
            mean contrastive term per epoch), the zoo, the options and the
            time taken.
        """

        for name, value in (('epochs', epochs), ('batch_size', batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    value < 1:
                raise GhnlibError(f'{name} must be a positive int, got '
                                  f'{value!r}')
        if not 0 <= holdout_fraction < 1:
            raise GhnlibError(f'holdout_fraction must be in [0, 1), got '
                              f'{holdout_fraction}')
        if contrast_weight < 0 or noise < 0:
            raise GhnlibError('contrast_weight and noise must be >= 0')
        start_time = time.perf_counter()
        weights = load_zoo_weights(zoo_dir, arch, min_epoch=min_epoch)
        input_shape = input_shape or weights.input_shape
        if input_shape is None:
            raise GhnlibError(f"the zoo in '{zoo_dir}' does not record its "
                              'input shape; pass input_shape=(1, C, H, W)')
        tokenizer = WeightTokenizer.from_model(
            get_model_for_input(weights.arch, input_shape), input_shape)
        if permute and not tokenizer.permutable:
            raise GhnlibError(
                f'{weights.arch} is not a chain of conv/linear layers, so '
                'neuron permutations would change its function; fit with '
                'permute=False')
        tokens = torch.stack([tokenizer.tokenize(
            {k: v.float() for k, v in state.items()})[0]
            for state in weights.states])

        seeds = sorted(set(weights.seeds))
        generator = torch.Generator().manual_seed(seed)
        held = set(seeds[i] for i in torch.randperm(
            len(seeds), generator=generator)[:int(holdout_fraction *
                                                  len(seeds))].tolist())
        is_train = torch.tensor([s not in held for s in weights.seeds])
        train_tokens = tokens[is_train]
        layer_mean, layer_std = _layer_statistics(train_tokens, tokenizer)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            autoencoder = WeightAutoencoder(
                tokenizer.width, tokenizer.layer_index.tolist(),
                tokenizer.position.tolist(), **(model_options or {}))
        hyper = cls(weights.arch, input_shape, tokenizer, autoencoder,
                    layer_mean, layer_std,
                    torch.zeros(0, tokenizer.num_tokens *
                                autoencoder.latent_dim),
                    torch.zeros(0), sampling)
        normalized = hyper._normalize(tokens)
        train_set, val_set = normalized[is_train], normalized[~is_train]
        if train_set.size(0) == 0:
            raise GhnlibError(f'holdout_fraction={holdout_fraction} leaves '
                              'no member to train on; lower it')

        history = hyper._train(train_set, val_set, epochs=epochs,
                               batch_size=batch_size, lr=lr,
                               weight_decay=weight_decay, permute=permute,
                               noise=noise, contrast_weight=contrast_weight,
                               temperature=temperature, generator=generator,
                               progress=progress)
        with torch.no_grad():
            hyper.anchor_latents = torch.cat([
                autoencoder.encode(chunk).flatten(1)
                for chunk in normalized.split(256)])
        hyper.anchor_accuracy = weights.accuracy.clone()
        history.update(zoo=os.path.abspath(os.fspath(zoo_dir)),
                       checkpoints=len(weights), members=len(seeds),
                       held_out_members=sorted(held), min_epoch=min_epoch,
                       seconds=time.perf_counter() - start_time,
                       options=dict(epochs=epochs, batch_size=batch_size,
                                    lr=lr, weight_decay=weight_decay,
                                    permute=permute, noise=noise,
                                    contrast_weight=contrast_weight,
                                    temperature=temperature, seed=seed))
        hyper.history = history
        return hyper

    def _train(self, train_set: Tensor, val_set: Tensor, *, epochs: int,
               batch_size: int, lr: float, weight_decay: float,
               permute: bool, noise: float, contrast_weight: float,
               temperature: float, generator: torch.Generator,
               progress: bool) -> dict:
        model = self.autoencoder
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr,
                                      weight_decay=weight_decay)
        steps_per_epoch = math.ceil(train_set.size(0) / batch_size)
        total = epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _lr_factor(step, total,
                                               max(1, total // 20)))
        history = dict(loss=[self._loss(train_set)],
                       val_loss=[self._loss(val_set)] if len(val_set) else [],
                       contrast=[])
        bar = tqdm(total=total, disable=not progress, unit='step',
                   dynamic_ncols=True)
        try:
            for _ in range(epochs):
                model.train()
                contrast_sum = 0.0
                order = torch.randperm(train_set.size(0), generator=generator)
                for batch_index in order.split(batch_size):
                    batch = train_set[batch_index]
                    view = (self.tokenizer.permute(batch, generator)
                            if permute else batch)
                    loss, contrast = self._step_loss(
                        view, batch, noise, contrast_weight, temperature,
                        permute, generator)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    contrast_sum += contrast
                    bar.update()
                    bar.set_postfix(loss=f'{loss.item():.4f}', refresh=False)
                if not math.isfinite(loss.item()):
                    raise GhnlibError(f'the hyper-representation loss is '
                                      f'{loss.item()}: training diverged; '
                                      f'lower lr (now {lr:g})')
                history['loss'].append(self._loss(train_set))
                if len(val_set):
                    history['val_loss'].append(self._loss(val_set))
                history['contrast'].append(contrast_sum / steps_per_epoch)
        finally:
            bar.close()
            model.eval()
        return history

    def _step_loss(self, view: Tensor, batch: Tensor, noise: float,
                   contrast_weight: float, temperature: float, permute: bool,
                   generator: torch.Generator) -> Tuple[Tensor, float]:
        mask = self.tokenizer.mask

        def corrupt(tokens: Tensor) -> Tensor:
            if noise == 0:
                return tokens
            return tokens + noise * torch.randn(
                tokens.shape, generator=generator) * mask

        reconstruction, latent = self.autoencoder(corrupt(view))
        loss = self._reconstruction_loss(reconstruction, view)
        contrast = 0.0
        if contrast_weight > 0 and view.size(0) >= 2:
            other = (self.tokenizer.permute(batch, generator) if permute
                     else batch)
            other_latent = self.autoencoder.encode(corrupt(other))
            term = nt_xent(self.autoencoder.project(latent),
                           self.autoencoder.project(other_latent),
                           temperature)
            loss = loss + contrast_weight * term
            contrast = term.item()
        return loss, contrast

    def _reconstruction_loss(self, prediction: Tensor,
                             target: Tensor) -> Tensor:
        # The poster's loss on raw weights: each layer's error over its
        # zoo variance (equal to the plain MSE of standardised tokens).
        return layerwise_mse(self._denormalize(prediction),
                             self._denormalize(target), self.tokenizer.mask,
                             self.tokenizer.layer_index, self.layer_std ** 2)

    @torch.no_grad()
    def _loss(self, normalized: Tensor) -> float:
        if normalized.size(0) == 0:
            return math.nan
        was_training = self.autoencoder.training
        self.autoencoder.eval()
        total = 0.0
        for chunk in normalized.split(256):
            total += self._reconstruction_loss(self.autoencoder(chunk)[0],
                                               chunk).item() * chunk.size(0)
        self.autoencoder.train(was_training)
        return total / normalized.size(0)

    # -- use ---------------------------------------------------------------
    @torch.no_grad()
    def reconstruction_loss(self, state_dicts: Sequence[Dict[str, Tensor]]
                            ) -> float:
        r"""The :func:`layerwise_mse` of reconstructing :obj:`state_dicts`
        (weights of the zoo's architecture)."""
        if not state_dicts:
            raise GhnlibError('pass at least one state dict')
        return self._loss(self._normalize(self._tokens(state_dicts)))

    @torch.no_grad()
    def encode(self, state_dicts: Sequence[Dict[str, Tensor]]) -> Tensor:
        r"""Latents of networks of the zoo's architecture,
        :math:`[N, T d_z]`."""
        if not state_dicts:
            raise GhnlibError('pass at least one state dict')
        normalized = self._normalize(self._tokens(state_dicts))
        return self.autoencoder.encode(normalized).flatten(1)

    @torch.no_grad()
    def decode(self, latents: Tensor) -> List[Dict[str, Tensor]]:
        r"""The weights latents :math:`[N, T d_z]` decode to, one state
        dict (parameter name → tensor) per row."""
        expected = self.tokenizer.num_tokens * self.autoencoder.latent_dim
        if latents.dim() != 2 or latents.size(1) != expected:
            raise GhnlibError(f'latents have shape {tuple(latents.shape)}, '
                              f'expected [N, {expected}]')
        latents = latents.float().view(latents.size(0),
                                       self.tokenizer.num_tokens,
                                       self.autoencoder.latent_dim)
        tokens = torch.cat([self.autoencoder.decode(chunk)
                            for chunk in latents.split(256)]) \
            if latents.size(0) else latents.new_zeros(
                0, self.tokenizer.num_tokens, self.tokenizer.width)
        tokens = self._denormalize(tokens)
        return [self.tokenizer.detokenize(row) for row in tokens]

    def kde(self, top_fraction: Optional[float] = None,
            bandwidth: Optional[Union[str, float]] = None,
            dimensionwise: Optional[bool] = None) -> GaussianKDE:
        r"""The :class:`GaussianKDE` over the latents of the most accurate
        :obj:`top_fraction` of the zoo's checkpoints (1.0:
        :math:`S_{\mathrm{KDE}}`, 0.3: :math:`S_{\mathrm{KDE30}}`); options
        left at :obj:`None` take :attr:`sampling`'s values."""
        options = self._sampling_options(top_fraction, bandwidth,
                                         dimensionwise)
        chosen = top_fraction_indices(self.anchor_accuracy,
                                      options['top_fraction'])
        return GaussianKDE(self.anchor_latents[chosen],
                           options['bandwidth'], options['dimensionwise'])

    def _sampling_options(self, top_fraction, bandwidth, dimensionwise):
        if self.anchor_latents.size(0) == 0:
            raise GhnlibError('this hyper-representation has no anchor '
                              'latents: build it with HyperRepresentation.fit')
        given = dict(top_fraction=top_fraction, bandwidth=bandwidth,
                     dimensionwise=dimensionwise)
        return {k: self.sampling[k] if v is None else v
                for k, v in given.items()}

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               top_fraction: Optional[float] = None, *,
               bandwidth: Optional[Union[str, float]] = None,
               dimensionwise: Optional[bool] = None
               ) -> List[Dict[str, Tensor]]:
        r"""Draws :obj:`n` new weight sets: latents from :meth:`kde`,
        decoded and detokenised.

        Args:
            n (int): How many.
            generator (torch.Generator, optional): The source of every random
                number; the same seed gives the same weights.
                (default: :obj:`None`)
            top_fraction (float, optional): Share of the most accurate zoo
                checkpoints the KDE is fit on. (default: :obj:`None`,
                :obj:`sampling['top_fraction']`, 0.3 unless fit otherwise)
            bandwidth (str or float, optional): See :class:`GaussianKDE`.
                (default: :obj:`None`, :obj:`sampling['bandwidth']`)
            dimensionwise (bool, optional): See :class:`GaussianKDE`.
                (default: :obj:`None`, :obj:`sampling['dimensionwise']`)

        Returns:
            A list of :obj:`n` state dicts (parameter name → tensor).
        """
        latents = self.kde(top_fraction, bandwidth, dimensionwise).sample(
            n, generator)
        return self.decode(latents.float())

    def check_model(self, model: nn.Module) -> None:
        r"""Raises :class:`~ghnlib.errors.GhnlibError` naming the first
        difference between :obj:`model` and the zoo's architecture
        (parameter names, shapes or data-flow order)."""
        expected = self.tokenizer.parameter_shapes
        actual = {name: tuple(p.shape) for name, p in model.named_parameters()}
        hint = (f'this hyper-representation was fit on a zoo of {self.arch} '
                f'with input {self.input_shape}; initialise a {self.arch} '
                'with the same options, or fit one on a zoo of your '
                'architecture')
        missing = [n for n in expected if n not in actual]
        extra = [n for n in actual if n not in expected]
        if missing or extra:
            parts = ([f'lacks {missing}'] if missing else []) + \
                ([f'has parameters the zoo lacks: {extra}'] if extra else [])
            raise GhnlibError(f'{type(model).__name__} does not match: it '
                              f"{' and '.join(parts)}; {hint}")
        for name, shape in expected.items():
            if actual[name] != tuple(shape):
                raise GhnlibError(
                    f"{type(model).__name__} does not match: parameter "
                    f"'{name}' has shape {actual[name]}, the zoo's has "
                    f'{tuple(shape)}; {hint}')
        theirs = WeightTokenizer.from_model(model, self.input_shape)
        mismatch = self.tokenizer.describe_mismatch(theirs)
        if mismatch:
            raise GhnlibError(f'{type(model).__name__} does not match: '
                              f'{mismatch}; {hint}')

    @torch.no_grad()
    def init_(self, model: nn.Module,
              generator: Optional[torch.Generator] = None,
              top_fraction: Optional[float] = None) -> nn.Module:
        r"""Writes one sampled weight set (:meth:`sample`) into
        :obj:`model`, a network of the zoo's architecture, and returns it.

        Args:
            model (nn.Module): The network, changed in place.
            generator (torch.Generator, optional): (default: :obj:`None`)
            top_fraction (float, optional): See :meth:`sample`.
                (default: :obj:`None`)

        Raises:
            GhnlibError: If :obj:`model`'s architecture differs from the
                zoo's; the message names the difference.
        """
        self.check_model(model)
        state = self.sample(1, generator, top_fraction)[0]
        params = dict(model.named_parameters())
        for name, value in state.items():
            params[name].copy_(value.to(params[name].dtype))
        return model

    # -- files -------------------------------------------------------------
    def save(self, directory: PathLike) -> None:
        r"""Writes the autoencoder, the statistics, the anchor latents and
        the config (JSON) to :obj:`directory/hyperrep.safetensors`,
        atomically."""
        from safetensors.torch import save_file

        tensors = {f'autoencoder/{k}': v.detach().contiguous().cpu()
                   for k, v in self.autoencoder.state_dict().items()}
        tensors.update(layer_mean=self.layer_mean.contiguous(),
                       layer_std=self.layer_std.contiguous(),
                       anchor_latents=self.anchor_latents.contiguous(),
                       anchor_accuracy=self.anchor_accuracy.contiguous())
        config = dict(arch=self.arch, input_shape=list(self.input_shape),
                      tokenizer=self.tokenizer.to_dict(),
                      autoencoder=self.autoencoder.config,
                      sampling=self.sampling, history=self.history)
        metadata = {'format': _FORMAT, 'format_version': str(_FORMAT_VERSION),
                    'config': json.dumps(config)}
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        atomic_write(os.path.join(directory, FILE),
                     lambda tmp: save_file(tensors, tmp, metadata=metadata))

    @classmethod
    def load(cls, directory: PathLike) -> 'HyperRepresentation':
        r"""Reads what :meth:`save` wrote; refuses anything else (a
        corrupt, truncated or foreign file, non-finite values) and never
        returns a half-loaded object."""
        path = os.path.join(os.fspath(directory), FILE)
        if not os.path.isfile(path):
            raise GhnlibError(f"no hyper-representation in '{directory}' "
                              f'(expected {FILE}); train one with '
                              '`ghnlib train-hyperrep ZOO --out DIR`')
        metadata, tensors = read_safetensors(
            path, 'hyper-representation', file_format=_FORMAT,
            hint='; train it again')
        if metadata.get('format_version') != str(_FORMAT_VERSION):
            raise GhnlibError(f"'{path}' is not a hyper-representation of "
                              f'format {_FORMAT_VERSION}')
        try:
            config = json.loads(metadata['config'])
            tokenizer = WeightTokenizer.from_dict(config['tokenizer'])
            autoencoder = WeightAutoencoder(**config['autoencoder'])
            prefix = 'autoencoder/'
            autoencoder.load_state_dict(
                {k[len(prefix):]: v for k, v in tensors.items()
                 if k.startswith(prefix)}, strict=True)
            for name, value in tensors.items():
                if not bool(torch.isfinite(value).all()):
                    raise GhnlibError(f"tensor '{name}' holds NaN or inf")
            hyper = cls(config['arch'], config['input_shape'], tokenizer,
                        autoencoder, tensors['layer_mean'],
                        tensors['layer_std'], tensors['anchor_latents'],
                        tensors['anchor_accuracy'], config['sampling'],
                        config.get('history'))
        except GhnlibError as error:
            raise GhnlibError(f"'{path}' is damaged: {error}") from error
        except Exception as error:
            raise GhnlibError(f"'{path}' does not match its config "
                              f'({type(error).__name__}: {error}); train it '
                              'again') from error
        return hyper

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(arch={self.arch!r}, '
                f'tokens={self.tokenizer.num_tokens}, '
                f'latent={self.anchor_latents.size(1)}, '
                f'anchors={self.anchor_latents.size(0)})')


def _layer_statistics(tokens: Tensor, tokenizer: WeightTokenizer
                      ) -> Tuple[Tensor, Tensor]:
    r"""Mean and standard deviation of every layer's weights and biases over
    the given networks, :math:`[L]` each."""
    num_layers = len(tokenizer.layers)
    mean, std = torch.zeros(num_layers), torch.ones(num_layers)
    for layer in range(num_layers):
        rows = tokenizer.layer_index == layer
        values = tokens[:, rows][:, tokenizer.mask[rows]]
        mean[layer] = values.mean()
        spread = values.std() if values.numel() > 1 else torch.tensor(0.)
        if not float(spread) > 0:
            raise GhnlibError(
                f"the weights of layer '{tokenizer.layers[layer].weight}' "
                'do not vary over the zoo, so they cannot be standardised; '
                'train the zoo members from different seeds')
        std[layer] = spread
    return mean, std
