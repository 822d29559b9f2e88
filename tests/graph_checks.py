"""Checks shared by the graph tests."""


def reachable_from(graph, sources):
    """Indices of the nodes reachable from `sources` along data-flow edges."""
    successors = [[] for _ in range(graph.num_nodes)]
    for u, v in graph.edge_index.t().tolist():
        successors[u].append(v)
    seen, stack = set(sources), list(sources)
    while stack:
        for v in successors[stack.pop()]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


def assert_valid_graph(graph, model):
    """Every parameter mapped exactly once, a DAG, all reachable from inputs."""
    names = [n for params in graph.node_params for n in params]
    assert len(names) == len(set(names))
    expected = dict(model.named_parameters())
    assert set(names) == set(expected)
    for params, shapes in zip(graph.node_params, graph.param_shapes):
        for name, shape in zip(params, shapes):
            assert tuple(expected[name].shape) == tuple(shape)
    assert graph.num_params == sum(p.numel() for p in model.parameters())
    src, dst = graph.edge_index
    assert bool((src < dst).all()), 'edges must follow a topological order'
    inputs = graph.input_index.tolist()
    assert inputs
    assert reachable_from(graph, inputs) == set(range(graph.num_nodes))
