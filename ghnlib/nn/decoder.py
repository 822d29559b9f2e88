r"""The hypernetwork proper: node state (+ noise) → parameter tensors."""
import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
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
        if torch.is_grad_enabled():
            return self.mlp(z)
        first, _, second, _ = self.mlp
        # Without autograd the activations can be rectified in place.
        return second(first(z).relu_()).relu_()

    def _rows(self, layer: nn.Linear, rows) -> Tuple[Tensor, Tensor]:
        if isinstance(rows, slice):
            return layer.weight[rows], layer.bias[rows]
        return (layer.weight.index_select(0, rows),
                layer.bias.index_select(0, rows))

    def factors(self, code: Tensor, crop: Tuple[int, int, int, int],
                classifier: bool = False
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""The factors of every node's weight crop and its squared norm:
        :math:`W[o, i, a, b] = \sum_r U[o, r] V[i, r] K[r, a, b] /
        \sqrt{R}`. Only the rows of the basis layers that the crop keeps
        are evaluated.

        Args:
            code (Tensor): :meth:`embed` outputs, :math:`[n, D]`.
            crop (Tuple[int, int, int, int]): :math:`(o, i, a, b)`: channels
                from the start, the kernel around its centre.
            classifier (bool, optional): Use the classifier basis.
                (default: :obj:`False`)

        Returns:
            :math:`U` :math:`[n, o, R]`, :math:`V` :math:`[n, i, R]`,
            :math:`K` :math:`[n, R, a \cdot b]` and
            :math:`\lVert W \rVert_F^2` :math:`[n]`, the latter from the
            :math:`R \times R` Gram matrices of the factors, without
            forming :math:`W`.
        """
        o, i, a, b = crop
        n, rank = code.size(0), self.rank
        _, _, kh, kw = self.max_shape
        # Basis rows are (position, r) for U and V, (r, y, x) for K.
        basis = self.class_basis if classifier else self.out_basis
        u = F.linear(code, *self._rows(basis, slice(0, o * rank)))
        v = F.linear(code, *self._rows(self.in_basis, slice(0, i * rank)))
        top, left = (kh - a) // 2, (kw - b) // 2
        if (a, b) == (kh, kw):
            kernel_rows = slice(None)
        else:
            y = torch.arange(top, top + a, device=code.device).view(-1, 1)
            x = torch.arange(left, left + b, device=code.device).view(1, -1)
            r = torch.arange(rank, device=code.device).view(-1, 1, 1)
            kernel_rows = (r * (kh * kw) + y * kw + x).view(-1)
        k = F.linear(code, *self._rows(self.kernel, kernel_rows))
        u, v, k = u.view(n, o, rank), v.view(n, i, rank), k.view(n, rank, a * b)
        # ||W||² = sum_rs (UᵀU)_rs (VᵀV)_rs (KKᵀ)_rs / R.
        gram = (u.transpose(1, 2) @ u) * (v.transpose(1, 2) @ v) * (
            k @ k.transpose(1, 2))
        return u, v, k, gram.sum((1, 2)).clamp_min(0) / rank

    @staticmethod
    def outer(v: Tensor, k: Tensor) -> Tensor:
        r""":math:`V \otimes K`: :math:`[n, i, R]` and :math:`[n, R, a
        \cdot b]` to :math:`[n, R, i \cdot a \cdot b]`, the right factor
        of the weight's matrix product."""
        n, i, rank = v.shape
        # A contiguous transpose first, so that the product comes out in
        # [n, R, i, a·b] order and the reshape is a view.
        v = v.transpose(1, 2).contiguous()
        return (v.unsqueeze(-1) * k.unsqueeze(2)).view(n, rank, i * k.size(-1))

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
        u, v, k, sq_norm = self.factors(code, crop, classifier)
        # One batched matrix product: U [n, o, R] @ (V ⊗ K) [n, R, i·a·b].
        w = torch.bmm(u, self.outer(v, k)).view(code.size(0), *crop)
        w = w / math.sqrt(self.rank)
        return (w, sq_norm) if return_norm else w

    def vector_pair(self, code: Tensor) -> Tensor:
        """Two vectors of :math:`O` values per node. Shape :math:`[n, 2, O]`."""
        return self.vectors(code).view(code.size(0), 2, self.max_shape[0])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'max_shape={self.max_shape}, rank={self.rank})')
