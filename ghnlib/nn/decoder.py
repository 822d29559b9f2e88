r"""The hypernetwork proper: node state (+ noise) → parameter tensors."""
import math
from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = ['ParameterDecoder']


class ParameterDecoder(nn.Module):
    r"""Decodes a node's final state into tensors of up to :obj:`max_shape`.

    A weight is a sum of :math:`R` separable terms, so any slice of the
    full :math:`O \times I \times K_h \times K_w` tensor can be computed
    without the rest:

    .. math::
        \mathbf{z} = \mathrm{MLP}(\mathbf{h}_v \,\|\, \boldsymbol{\xi}),
        \qquad
        W[o, i, a, b] = \frac{1}{\sqrt{R}} \sum_{r=1}^{R} U(\mathbf{z})[o, r]
        \, V(\mathbf{z})[i, r] \, K(\mathbf{z})[r, a, b]

    The classifier uses its own output basis with one row per class
    (:obj:`num_classes`); vectors (norm weights and biases, biases) come
    from a small linear head of :math:`2 \times O` values.

    Args:
        in_channels (int): Node state size plus noise size.
        max_shape (Sequence[int], optional): :math:`(O, I, K_h, K_w)`.
            (default: :obj:`(64, 64, 3, 3)`)
        num_classes (int, optional): Rows of the classifier basis.
            (default: :obj:`10`)
        hidden_channels (int, optional): Width of the MLP.
            (default: :obj:`128`)
        rank (int, optional): :math:`R`. (default: :obj:`16`)
    """
    def __init__(self, in_channels: int,
                 max_shape: Sequence[int] = (64, 64, 3, 3),
                 num_classes: int = 10, hidden_channels: int = 128,
                 rank: int = 16):
        super().__init__()
        if len(max_shape) != 4 or min(max_shape) < 1:
            raise ValueError(f'max_shape must be four positive sizes '
                             f'(out, in, kh, kw), got {tuple(max_shape)}')
        self.in_channels = in_channels
        self.max_shape = tuple(int(s) for s in max_shape)
        self.num_classes = num_classes
        self.rank = rank
        out_max, in_max, kh, kw = self.max_shape
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden_channels),
                                 nn.ReLU(),
                                 nn.Linear(hidden_channels, hidden_channels),
                                 nn.ReLU())
        self.out_basis = nn.Linear(hidden_channels, out_max * rank)
        self.class_basis = nn.Linear(hidden_channels, num_classes * rank)
        self.in_basis = nn.Linear(hidden_channels, in_max * rank)
        self.kernel = nn.Linear(hidden_channels, rank * kh * kw)
        self.vectors = nn.Linear(hidden_channels, 2 * out_max)
        self.reset_parameters()

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def embed(self, z: Tensor) -> Tensor:
        """The MLP code of node states (+ noise). Shape :math:`[n, D]`."""
        return self.mlp(z)

    def weights(self, code: Tensor, crop: Tuple[int, int, int, int],
                classifier: bool = False, return_norm: bool = False):
        r"""Only the :obj:`crop` of every node's weight: channels from the
        start, the kernel around its centre.

        Args:
            code (Tensor): :meth:`embed` outputs, :math:`[n, D]`.
            crop (Tuple[int, int, int, int]): :math:`(o, i, a, b)`.
            classifier (bool, optional): Use the classifier basis.
                (default: :obj:`False`)
            return_norm (bool, optional): Also return each crop's squared
                Frobenius norm, :math:`[n]`, computed from the factors.
                (default: :obj:`False`)

        Shapes: :math:`[n, D]` → :math:`[n, o, i, a, b]`.
        """
        o, i, a, b = crop
        n = code.size(0)
        out_max, in_max, kh, kw = self.max_shape
        if classifier:
            u = self.class_basis(code).view(n, self.num_classes, self.rank)
        else:
            u = self.out_basis(code).view(n, out_max, self.rank)
        v = self.in_basis(code).view(n, in_max, self.rank)
        k = self.kernel(code).view(n, self.rank, kh, kw)
        top, left = (kh - a) // 2, (kw - b) // 2
        u, v = u[:, :o], v[:, :i]
        k = k[:, :, top:top + a, left:left + b].reshape(n, self.rank, a * b)
        # One batched matrix product: U [n, o, R] @ (V ⊗ K) [n, R, i·a·b].
        vk = (v.transpose(1, 2).unsqueeze(-1) * k.unsqueeze(2)).reshape(
            n, self.rank, i * a * b)
        w = torch.bmm(u, vk).view(n, o, i, a, b)
        if not return_norm:
            return w / math.sqrt(self.rank)
        # ||W||² from the R×R Gram matrices of the factors, without a pass
        # over W: sum_rs (UᵀU)_rs (VᵀV)_rs (KKᵀ)_rs.
        gram = (u.transpose(1, 2) @ u) * (v.transpose(1, 2) @ v) * (
            k @ k.transpose(1, 2))
        return w / math.sqrt(self.rank), gram.sum((1, 2)).clamp_min(0) / self.rank

    def vector_pair(self, code: Tensor) -> Tensor:
        """Two vectors of :math:`O` values per node. Shape :math:`[n, 2, O]`."""
        return self.vectors(code).view(code.size(0), 2, self.max_shape[0])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'max_shape={self.max_shape}, rank={self.rank})')
