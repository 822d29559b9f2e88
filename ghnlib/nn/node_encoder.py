r"""Initial node states of the graph hypernetwork: op and shape embeddings."""
import math

import torch
from torch import Tensor, nn

from ghnlib.graph.vocabulary import OPS

__all__ = ['NodeEncoder', 'SHAPE_VALUES']

#: The sizes the shape encoder knows; any other size maps to the nearest in
#: log scale (0 means "no such dimension").
SHAPE_VALUES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20,
                24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224,
                256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 2048,
                2560, 3072, 4096, 8192)


class NodeEncoder(nn.Module):
    r"""Embeds each node's op and parameter shape into its initial state
    (GHN-2, `"Parameter Prediction for Unseen Deep Architectures"
    <https://arxiv.org/abs/2110.13100>`_):

    .. math::
        \mathbf{h}^0_v = E_{\mathrm{op}}[o_v] + \sum_{d=0}^{3}
        E_d[q(s_{v,d})]

    where :math:`q` maps a size to the index of the nearest value of
    :obj:`SHAPE_VALUES` in log scale, so unseen sizes get the embedding of
    the closest known one.

    Args:
        hidden_channels (int, optional): Size of the node states.
            (default: :obj:`32`)
        num_ops (int, optional): Size of the op vocabulary.
            (default: :obj:`len(OPS)`)

    Shapes:
        - **input:** op ids :math:`[N]`, node shapes :math:`[N, 4]`
        - **output:** :math:`[N, H]`
    """
    def __init__(self, hidden_channels: int = 32, num_ops: int = len(OPS)):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.op_embedding = nn.Embedding(num_ops, hidden_channels)
        self.shape_embeddings = nn.ModuleList(
            nn.Embedding(len(SHAPE_VALUES), hidden_channels) for _ in range(4))
        logs = [math.log(v) if v > 0 else -1.0 for v in SHAPE_VALUES]
        # Boundaries halfway (in log scale) between consecutive known sizes.
        self.register_buffer('boundaries', torch.tensor(
            [(a + b) / 2 for a, b in zip(logs[:-1], logs[1:])]), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        self.op_embedding.reset_parameters()
        for embedding in self.shape_embeddings:
            embedding.reset_parameters()

    def quantize(self, sizes: Tensor) -> Tensor:
        """Index of the nearest known size (log scale) of every size."""
        logs = torch.where(sizes > 0, sizes.clamp(min=1).float().log(),
                           torch.full_like(sizes, -1, dtype=torch.float))
        return torch.bucketize(logs, self.boundaries.to(logs.dtype))

    def forward(self, op: Tensor, node_shape: Tensor) -> Tensor:
        if op.max() >= self.op_embedding.num_embeddings:
            raise ValueError(f'op id {int(op.max())} is outside the vocabulary '
                             f'of {self.op_embedding.num_embeddings} ops')
        h = self.op_embedding(op)
        bins = self.quantize(node_shape)
        for d, embedding in enumerate(self.shape_embeddings):
            # In place: an embedding's backward needs its indices only.
            h += embedding(bins[:, d])
        return h

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.hidden_channels}, '
                f'num_ops={self.op_embedding.num_embeddings})')
