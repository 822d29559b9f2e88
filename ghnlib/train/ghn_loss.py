r"""The training objective of a GHN (eq. 2) and a Noise GHN (eq. 4)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ghnlib.graph import ArchGraph
from ghnlib.nn.output_scale import apply_output_scales, output_scales

__all__ = ['MetaBatchLoss']


class MetaBatchLoss(nn.Module):
    r"""The loss of a graph hypernetwork on a meta-batch: every architecture,
    with the weights the GHN predicts for it, classifies the same images.

    For a deterministic GHN (`"Parameter Prediction for Unseen Deep
    Architectures" <https://arxiv.org/abs/2110.13100>`_, eq. 2 of the Noise
    GHN paper):

    .. math::
        \mathcal{L} = \frac{1}{b} \sum_{i=1}^{b} \sum_{j}
        L\big(f(\mathbf{x}_i, a_j, H_\theta(a_j)), y_i\big)

    For a Noise GHN (`"From Pointwise to Powerhouse"
    <https://arxiv.org/abs/2310.16695>`_, eq. 3–4), two noise draws per
    architecture and the cosine similarity of their logits:

    .. math::
        \mathcal{L} = \frac{1}{b} \sum_{i=1}^{b} \sum_{j} \Big[
        \sum_{k=1}^{2} L\big(f^{(k)}(\mathbf{x}_i, a_j,
        H_\theta(a_j, \xi_k)), y_i\big) + \lambda\,
        \mathrm{CosSim}\big(f^{(1)}(\mathbf{x}_i, \cdot),
        f^{(2)}(\mathbf{x}_i, \cdot)\big) \Big]

    (the paper's sum over images, divided by the batch size :math:`b` so
    the learning rate does not depend on it; :math:`\lambda = 1` in the
    paper). The architectures' modules only lend their structure and
    buffers: their parameters are replaced through
    :func:`torch.func.functional_call`, so gradients reach the GHN alone.
    The modules are deliberately not submodules, so wrapping this loss in
    :class:`~torch.nn.parallel.DistributedDataParallel` synchronises the
    GHN's gradients only.

    Args:
        ghn (GraphHyperNetwork): The hypernetwork being trained.
        models (Sequence[nn.Module]): The architectures of the meta-batch.
        graphs (Sequence[ArchGraph]): Their graphs, in the same order.
        noise_draws (int, optional): Weight sets per architecture and step
            (only for a Noise GHN). (default: :obj:`2`)
        similarity_weight (float, optional): :math:`\lambda`.
            (default: :obj:`1.0`)
        scale_outputs (bool, optional): Scale each predicted weight layer so
            that its output has unit standard deviation on the step's images
            (:func:`~ghnlib.nn.output_scale.output_scales`; constant
            factors, so gradients still reach every predicted weight) before
            the loss is taken: networks without batch norm then start near
            chance-level cross-entropy instead of far above it.
            (default: :obj:`False`)
        logit_scale (float, optional): Take the cross-entropy of
            :math:`\tau\, \mathbf{z} / \mathrm{sg}(\sigma(\mathbf{z}))`,
            every image's logits divided by their (constant) standard
            deviation over the classes and multiplied by :math:`\tau`: the
            loss then depends on which class each network favours, not on
            the scale of its logits, which in networks without batch norm
            can start orders of magnitude too large (a cross-entropy of 9
            and gradients that carry nothing). Accuracy is unchanged.
            (default: :obj:`None`, the logits as they are)

    Shapes:
        - **input:** images :math:`[b, C, H, W]`, labels :math:`[b]`,
          noise :math:`[K \cdot A, D]` (draw-major) or :obj:`None`
        - **output:** a scalar loss and a dict of detached statistics
    """
    def __init__(self, ghn: nn.Module, models: Sequence[nn.Module],
                 graphs: Sequence[ArchGraph], noise_draws: int = 2,
                 similarity_weight: float = 1.0, scale_outputs: bool = False,
                 logit_scale: Optional[float] = None):
        super().__init__()
        if len(models) != len(graphs) or not models:
            raise ValueError(f'expected one graph per model and at least one '
                             f'model, got {len(models)} models and '
                             f'{len(graphs)} graphs')
        self.ghn = ghn
        self.draws = noise_draws if ghn.noise_dim > 0 else 1
        if self.draws < 1:
            raise ValueError(f'noise_draws must be >= 1, got {noise_draws}')
        self.similarity_weight = similarity_weight
        self.scale_outputs = scale_outputs
        if logit_scale is not None and not logit_scale > 0:
            raise ValueError(f'logit_scale must be positive or None, got '
                             f'{logit_scale}')
        self.logit_scale = logit_scale
        # Plain attributes, not submodules: see the class docstring.
        self.__dict__['models'] = tuple(models)
        self.__dict__['graphs'] = tuple(graphs) * self.draws
        # Batched, scheduled and planned once for every step.
        self.prepared = ghn.prepare(self.graphs)

    def forward(self, images: Tensor, labels: Tensor,
                noise: Tensor = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        predicted = self.ghn.predict(self.prepared, noise=noise)
        num_models = len(self.models)
        cross_entropy = images.new_zeros(())
        similarity = images.new_zeros(())
        correct = images.new_zeros(())
        logits_per_draw: List[List[Tensor]] = []
        for draw in range(self.draws):
            row = []
            for j, model in enumerate(self.models):
                params = predicted[draw * num_models + j]
                if self.scale_outputs:
                    params = apply_output_scales(
                        params, output_scales(model, params, images))
                logits = functional_call(model, params, (images, ))
                seen = logits
                if self.logit_scale is not None:
                    spread = logits.detach().float().std(-1, keepdim=True)
                    seen = logits * (self.logit_scale / spread.clamp_min(
                        1e-6)).to(logits.dtype)
                cross_entropy = cross_entropy + F.cross_entropy(seen, labels)
                correct = correct + (logits.argmax(-1) == labels).float().mean()
                row.append(logits)
            logits_per_draw.append(row)
        if self.draws > 1:
            for j in range(num_models):
                for k in range(1, self.draws):
                    similarity = similarity + F.cosine_similarity(
                        logits_per_draw[0][j].float(),
                        logits_per_draw[k][j].float(), dim=-1).mean()
        loss = cross_entropy + self.similarity_weight * similarity
        runs = self.draws * num_models
        stats = {'loss': loss.detach(),
                 'cross_entropy': cross_entropy.detach() / runs,
                 'similarity': similarity.detach() / max(
                     1, num_models * (self.draws - 1)),
                 'accuracy': correct.detach() / runs}
        return loss, stats
