import torch

from ghnlib.graph import OPS
from ghnlib.nn import NodeEncoder
from ghnlib.nn.node_encoder import SHAPE_VALUES


def test_sizes_map_to_the_nearest_known_value_in_log_scale():
    encoder = NodeEncoder(8)
    sizes = torch.tensor([0, 1, 3, 17, 63, 65, 100, 1000, 2047, 10 ** 6])
    known = [SHAPE_VALUES[i] for i in encoder.quantize(sizes)]
    assert known == [0, 1, 3, 16, 64, 64, 96, 1024, 2048, 8192]
    # Every known value maps to itself.
    values = torch.tensor(SHAPE_VALUES)
    assert encoder.quantize(values).tolist() == list(range(len(SHAPE_VALUES)))


def test_state_is_op_plus_shape_embeddings():
    torch.manual_seed(0)
    encoder = NodeEncoder(8)
    op = torch.tensor([OPS.index('conv'), OPS.index('relu')])
    shape = torch.tensor([[64, 32, 3, 3], [0, 0, 0, 0]])
    h = encoder(op, shape)
    bins = encoder.quantize(shape)
    expected = encoder.op_embedding(op) + sum(
        encoder.shape_embeddings[d](bins[:, d]) for d in range(4))
    torch.testing.assert_close(h, expected)
    # An unseen size (65) gets the embedding of the nearest known one (64).
    unseen = encoder(op[:1], torch.tensor([[65, 32, 3, 3]]))
    torch.testing.assert_close(unseen, h[:1])
    assert repr(encoder) == f'NodeEncoder(8, num_ops={len(OPS)})'
