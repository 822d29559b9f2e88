r"""The losses of a hyper-representation: layer-wise normalised
reconstruction and a contrastive term between augmented views."""
import torch
import torch.nn.functional as F
from torch import Tensor

from ghnlib.errors import GhnlibError

__all__ = ['layerwise_mse', 'nt_xent']


def layerwise_mse(prediction: Tensor, target: Tensor, mask: Tensor,
                  layer_index: Tensor, layer_variance: Tensor) -> Tensor:
    r"""The reconstruction loss of the `"Hyper-Representations as Generative
    Models" <https://arxiv.org/abs/2209.14733>`_ paper: every layer's squared
    error divided by the variance of that layer's weights over the zoo,

    .. math::
        \mathcal{L}_{\mathrm{MSE}} = \frac{1}{MN} \sum_{i=1}^{M}
        \sum_{\ell=1}^{L} \frac{\|\hat{\mathbf{w}}^{(\ell)}_i -
        \mathbf{w}^{(\ell)}_i\|_2^2}{\sigma_\ell^2},

    for :math:`M` networks of :math:`N` parameters each, so that layers of
    small weights count as much as layers of large ones. Only entries the
    mask marks (real weights, not padding) count.

    Args:
        prediction (Tensor): Reconstructed tokens.
        target (Tensor): The original tokens.
        mask (Tensor): Which token entries are real weights.
        layer_index (Tensor): The layer :math:`\ell` of every token.
        layer_variance (Tensor): :math:`\sigma_\ell^2` per layer.

    Shapes:
        - **prediction, target:** :math:`[M, T, W]`
        - **mask:** :math:`[T, W]` or :math:`[M, T, W]`
        - **layer_index:** :math:`[T]`
        - **layer_variance:** :math:`[L]`
        - **output:** scalar
    """
    if prediction.shape != target.shape or prediction.dim() != 3:
        raise GhnlibError(f'prediction {tuple(prediction.shape)} and target '
                          f'{tuple(target.shape)} must both be [M, T, W]')
    if layer_index.shape != (target.size(1), ):
        raise GhnlibError(f'layer_index has shape {tuple(layer_index.shape)}'
                          f', expected ({target.size(1)},), one per token')
    if not bool((layer_variance > 0).all()):
        raise GhnlibError('every layer variance must be positive; a layer '
                          'whose weights are identical across the zoo '
                          'cannot be normalised')
    mask = mask.expand_as(target).to(target.dtype)
    per_token = layer_variance.to(target.dtype)[layer_index].view(1, -1, 1)
    squared = (prediction - target).pow(2) * mask / per_token
    return squared.sum() / mask.sum()


def nt_xent(first: Tensor, second: Tensor, temperature: float = 0.1
            ) -> Tensor:
    r"""The normalised temperature-scaled cross-entropy of `"A Simple
    Framework for Contrastive Learning of Visual Representations"
    <https://arxiv.org/abs/2002.05709>`_ (SimCLR): two views of the same
    network attract, views of other networks in the batch repel,

    .. math::
        \mathcal{L}_{\mathrm{c}} = -\frac{1}{2M} \sum_{k=1}^{2M}
        \log \frac{\exp(\cos(\mathbf{z}_k, \mathbf{z}_{k^+}) / \tau)}
        {\sum_{j \neq k} \exp(\cos(\mathbf{z}_k, \mathbf{z}_j) / \tau)},

    where :math:`k^+` is the other view of :math:`k`'s network.

    Args:
        first (Tensor): Embeddings of the first views.
        second (Tensor): Embeddings of the second views, row by row.
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.1`)

    Shapes:
        - **first, second:** :math:`[M, D]` with :math:`M \geq 2`
        - **output:** scalar
    """
    if first.shape != second.shape or first.dim() != 2 or first.size(0) < 2:
        raise GhnlibError(f'nt_xent needs two [M, D] batches with M >= 2, '
                          f'got {tuple(first.shape)} and '
                          f'{tuple(second.shape)}')
    count = first.size(0)
    embeddings = F.normalize(torch.cat([first, second]), dim=1)
    logits = embeddings @ embeddings.t() / temperature
    logits.fill_diagonal_(float('-inf'))
    positives = torch.cat([torch.arange(count, 2 * count),
                           torch.arange(count)]).to(first.device)
    return F.cross_entropy(logits, positives)
