r"""Kernel density estimates to sample new points near a population: latent
embeddings of a zoo (:math:`S_{\mathrm{KDE}}`) or its raw weights
(:math:`B_{\mathrm{KDE}}`)."""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError

__all__ = ['GaussianKDE', 'top_fraction_indices', 'sample_raw_weights',
           'BANDWIDTH_RULES']

BANDWIDTH_RULES = ('scott', 'silverman')


def top_fraction_indices(accuracy: Union[Tensor, Sequence[float]],
                 fraction: float) -> Tensor:
    r"""Indices of the :math:`\lceil f N \rceil` most accurate of :math:`N`
    models (at least one), best first; ties keep the earlier index first.

    Args:
        accuracy (Tensor or Sequence[float]): One accuracy per model.
        fraction (float): :math:`f \in (0, 1]`; 1 keeps every model.
    """
    accuracy = torch.as_tensor(accuracy, dtype=torch.float64).flatten()
    if not 0 < fraction <= 1:
        raise GhnlibError(f'the top fraction must be in (0, 1], got '
                          f'{fraction}; '
                          'use 0.3 for the top 30 %, 1.0 for every model')
    if accuracy.numel() == 0:
        raise GhnlibError('no models to choose from')
    count = max(1, math.ceil(fraction * accuracy.numel() - 1e-9))
    order = torch.sort(-accuracy, stable=True).indices
    return order[:count]


class GaussianKDE:
    r"""A Gaussian kernel density estimate over :math:`N` points in
    :math:`\mathbb{R}^D` with a diagonal kernel, to sample latents as in
    the `"Hyper-Representations as Generative Models"
    <https://arxiv.org/abs/2209.14733>`_ paper:

    .. math::
        \hat{p}(\mathbf{x}) = \prod_{d=1}^{D} \frac{1}{N} \sum_{i=1}^{N}
        \mathcal{N}\left(x_d \mid x_{i,d}, h_d^2\right)
        \quad \text{(dimension-wise)}, \qquad
        \hat{p}(\mathbf{x}) = \frac{1}{N} \sum_{i=1}^{N}
        \mathcal{N}\left(\mathbf{x} \mid \mathbf{x}_i,
        \mathrm{diag}(\mathbf{h})^2\right) \quad \text{(joint)}.

    The dimension-wise estimate (the authors' choice) draws every
    coordinate from its own one-dimensional KDE, so a sample mixes
    coordinates of different points; the joint one perturbs a single
    point. Each coordinate's bandwidth is its one-dimensional rule of
    thumb on its standard deviation :math:`\sigma_d` (as
    :class:`scipy.stats.gaussian_kde` computes it for one dimension):
    Scott's :math:`h_d = \sigma_d N^{-1/5}` or Silverman's
    :math:`h_d = \sigma_d (3N/4)^{-1/5}`; or one fixed :math:`h` for every
    coordinate. The joint estimate uses the same per-coordinate widths: the
    multivariate rules' factor :math:`N^{-1/(D+4)}` tends to 1 in the
    hundreds of dimensions of a latent space, which would bury every point
    under noise as wide as the whole population.

    Args:
        points (Tensor): The :math:`N` points.
        bandwidth (str or float, optional): :obj:`'scott'`,
            :obj:`'silverman'` or a kernel width :math:`h \geq 0`.
            (default: :obj:`'scott'`)
        dimensionwise (bool, optional): Dimension-wise (:obj:`True`) or joint
            estimate. (default: :obj:`False`)

    Shapes:
        - **points:** :math:`[N, D]`
        - **samples:** :math:`[n, D]`
    """
    def __init__(self, points: Tensor, bandwidth: Union[str, float] = 'scott',
                 dimensionwise: bool = False):
        if points.dim() != 2 or points.size(0) == 0:
            raise GhnlibError(f'a KDE needs points of shape [N, D] with '
                              f'N >= 1, got {tuple(points.shape)}')
        if not bool(torch.isfinite(points).all()):
            raise GhnlibError('the KDE points hold NaN or inf')
        self.points = points.detach().to(torch.float64)
        self.dimensionwise = bool(dimensionwise)
        self.bandwidth = self._bandwidths(bandwidth)

    def _bandwidths(self, bandwidth: Union[str, float]) -> Tensor:
        count, dims = self.points.shape
        if isinstance(bandwidth, str):
            if bandwidth not in BANDWIDTH_RULES:
                raise GhnlibError(f'bandwidth must be one of '
                                  f'{BANDWIDTH_RULES} or a number >= 0, got '
                                  f'{bandwidth!r}')
            std = (self.points.std(dim=0) if count > 1
                   else torch.zeros(dims, dtype=torch.float64))
            factor = (count ** (-1 / 5) if bandwidth == 'scott'
                      else (count * 3 / 4) ** (-1 / 5))
            return std * factor
        if isinstance(bandwidth, bool) or not isinstance(
                bandwidth, (int, float)) or not 0 <= bandwidth < math.inf:
            raise GhnlibError(f"bandwidth must be 'scott', 'silverman' or a "
                              f'finite number >= 0, got {bandwidth!r}')
        return torch.full((dims, ), float(bandwidth), dtype=torch.float64)

    @property
    def num_points(self) -> int:
        return self.points.size(0)

    def sample(self, n: int, generator: Optional[torch.Generator] = None
               ) -> Tensor:
        r"""Draws :obj:`n` points, :math:`[n, D]` (float64).

        Args:
            n (int): How many.
            generator (torch.Generator, optional): The source of every random
                number. (default: :obj:`None`)
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise GhnlibError(f'n must be an int >= 0, got {n!r}')
        count, dims = self.points.shape
        if self.dimensionwise:
            choice = torch.randint(count, (n, dims), generator=generator)
            centres = self.points.gather(0, choice)
        else:
            choice = torch.randint(count, (n, ), generator=generator)
            centres = self.points[choice]
        noise = torch.randn(n, dims, generator=generator,
                            dtype=torch.float64)
        return centres + noise * self.bandwidth

    def __repr__(self) -> str:
        kind = 'dimensionwise' if self.dimensionwise else 'joint'
        return (f'{self.__class__.__name__}({self.num_points}, '
                f'{self.points.size(1)}, {kind})')


def sample_raw_weights(state_dicts: Sequence[Dict[str, Tensor]],
                       accuracy: Union[Tensor, Sequence[float]], n: int, *,
                       top_fraction: float = 0.3,
                       bandwidth: Union[str, float] = 'scott',
                       dimensionwise: bool = False,
                       generator: Optional[torch.Generator] = None
                       ) -> List[Dict[str, Tensor]]:
    r"""The :math:`B_{\mathrm{KDE}}` baseline of the `"Hyper-Representations
    as Generative Models" <https://arxiv.org/abs/2209.14733>`_ paper: a
    :class:`GaussianKDE` fit directly on the flattened weights of the most
    accurate models of a zoo (:math:`B_{\mathrm{KDE30}}` with
    :obj:`top_fraction=0.3`), sampled and reshaped into state dicts.

    Args:
        state_dicts (Sequence[Dict[str, Tensor]]): The zoo's weights, all of
            the same architecture (floating-point entries are sampled, others
            copied from the best model).
        accuracy (Tensor or Sequence[float]): One accuracy per state dict.
        n (int): How many state dicts to draw.
        top_fraction (float, optional): Share of the most accurate models the
            KDE is fit on. (default: :obj:`0.3`)
        bandwidth (str or float, optional): See :class:`GaussianKDE`.
            (default: :obj:`'scott'`)
        dimensionwise (bool, optional): See :class:`GaussianKDE`.
            (default: :obj:`False`)
        generator (torch.Generator, optional): (default: :obj:`None`)
    """
    if len(state_dicts) != len(torch.as_tensor(accuracy).flatten()):
        raise GhnlibError(f'{len(state_dicts)} state dicts but '
                          f'{len(torch.as_tensor(accuracy).flatten())} '
                          'accuracies; give one accuracy per state dict')
    chosen = [state_dicts[i] for i in top_fraction_indices(accuracy,
                                                           top_fraction)]
    reference = chosen[0]
    names = [k for k, v in reference.items() if v.is_floating_point()]
    for state in chosen:
        for name in names:
            if name not in state or state[name].shape != reference[name].shape:
                raise GhnlibError(f"the state dicts differ at '{name}'; pass "
                                  'weights of one architecture')
    flat = torch.stack([torch.cat([state[name].detach().flatten().double()
                                   for name in names]) for state in chosen])
    kde = GaussianKDE(flat, bandwidth, dimensionwise)
    samples = kde.sample(n, generator)
    result = []
    for row in samples:
        state, start = {}, 0
        for key, value in reference.items():
            if key in names:
                size = value.numel()
                state[key] = row[start:start + size].view(value.shape).to(
                    value.dtype)
                start += size
            else:
                state[key] = value.clone()
        result.append(state)
    return result

