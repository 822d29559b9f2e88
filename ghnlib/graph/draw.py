r"""Drawing an :class:`ArchGraph` for a person to look at."""
import os
from typing import Dict, List, Optional, Union

from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.levels import node_levels

__all__ = ['draw_graph']

_FAMILY_COLORS = {
    'io': '#4d4d4d',
    'conv': '#1f77b4',
    'linear': '#2ca02c',
    'norm': '#ff7f0e',
    'activation': '#d62728',
    'pool': '#9467bd',
    'merge': '#8c564b',
    'attention': '#e377c2',
    'embedding': '#17becf',
    'other': '#bcbd22',
}


def _family(op: str) -> str:
    if op in ('input', 'output'):
        return 'io'
    if op.startswith('conv'):
        return 'conv'
    if op in ('linear', 'bias', 'matmul'):
        return 'linear'
    if op.endswith('_norm'):
        return 'norm'
    if op.endswith('pool') or op == 'mean':
        return 'pool'
    if op in ('sum', 'concat', 'multiply'):
        return 'merge'
    if op in ('attention', 'softmax'):
        return 'attention'
    if op in ('embedding', 'pos_embedding', 'class_token', 'layer_scale'):
        return 'embedding'
    if op in ('relu', 'gelu', 'silu', 'sigmoid', 'tanh', 'hardswish',
              'hardsigmoid', 'elu', 'activation'):
        return 'activation'
    return 'other'


def draw_graph(graph: ArchGraph, path: Union[str, os.PathLike, None] = None,
               *, ax=None, labels: Optional[bool] = None, dpi: int = 150):
    r"""Draws the graph top to bottom, one row per depth, nodes coloured by
    op family, and writes it as a PNG if :obj:`path` is given.

    Args:
        graph (ArchGraph): The graph.
        path (str, optional): Where to write the PNG. (default: :obj:`None`)
        ax (matplotlib.axes.Axes, optional): Axes to draw into; a new figure
            is made otherwise. (default: :obj:`None`)
        labels (bool, optional): Write op names next to nodes; by default
            only for graphs of at most 120 nodes. (default: :obj:`None`)
        dpi (int, optional): Resolution of the PNG. (default: :obj:`150`)

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    import matplotlib
    if ax is None:
        matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    levels = node_levels(graph.edge_index, graph.num_nodes).tolist()
    ops = graph.op_names
    rows: Dict[int, List[int]] = {}
    for node, level in enumerate(levels):
        rows.setdefault(level, []).append(node)
    x = [0.0] * graph.num_nodes
    for nodes in rows.values():
        for k, node in enumerate(nodes):
            x[node] = k - (len(nodes) - 1) / 2
    y = [-level for level in levels]

    depth = max(levels) + 1 if levels else 1
    width = max(len(nodes) for nodes in rows.values()) if rows else 1
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(4 + 1.2 * width, 30),
                                        min(2 + 0.3 * depth, 60)))
    else:
        fig = ax.figure
    for u, v in graph.edge_index.t().tolist():
        # Edges that skip rows bend aside, so skip connections stay visible
        # where a straight line would run over the nodes in between.
        bend = 0.0 if levels[v] - levels[u] == 1 else 0.35
        ax.add_patch(FancyArrowPatch((x[u], y[u]), (x[v], y[v]),
                                     connectionstyle=f'arc3,rad={bend}',
                                     arrowstyle='-', color='#999999', lw=0.6,
                                     zorder=1))
    colors = [_FAMILY_COLORS[_family(op)] for op in ops]
    ax.scatter(x, y, c=colors, s=40, zorder=2, edgecolors='black',
               linewidths=0.3)
    if labels is None:
        labels = graph.num_nodes <= 120
    if labels:
        for node, op in enumerate(ops):
            ax.annotate(op, (x[node], y[node]), xytext=(4, 0),
                        textcoords='offset points', fontsize=6,
                        va='center')
    used = sorted({_family(op) for op in ops})
    ax.legend(handles=[
        Line2D([], [], marker='o', ls='', color=_FAMILY_COLORS[f], label=f)
        for f in used
    ], loc='upper right', fontsize=7, frameon=False)
    ax.set_xlim(min(x) - 1, max(x) + 1.5)
    ax.set_axis_off()
    ax.set_title(f'{graph.num_nodes} nodes, {graph.edge_index.size(1)} edges')
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches='tight')
    return fig
