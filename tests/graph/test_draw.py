import matplotlib
import torch

from ghnlib.graph import draw_graph, node_levels, to_graph
from ghnlib.models import get_model

matplotlib.use('Agg')


def test_one_row_per_level(tmp_path):
    graph = to_graph(get_model('resnet20'))
    path = tmp_path / 'resnet20.png'
    fig = draw_graph(graph, path)
    assert path.stat().st_size > 0
    points = fig.axes[0].collections[0].get_offsets()
    levels = node_levels(graph.edge_index, graph.num_nodes)
    assert torch.equal(torch.as_tensor(points[:, 1]).double(),
                       -levels.double())
