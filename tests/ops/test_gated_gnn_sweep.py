"""The compiled inference sweep ghnlib::gated_gnn_sweep against the
level-by-level PyTorch sweep it replaces, its layout and its checks."""
import pytest
import torch
from torch_geometric.data import Batch

from ghnlib.nn import GatedGNN, SweepSchedule
from ghnlib.nn.reference_gated_gnn import reference_adjacency
from ghnlib.ops import (check_sweep_layout, gated_gnn_sweep,
                        sweep_kernel_applies)
from random_graphs import random_dag

HIDDEN = 8


@pytest.fixture
def batch():
    return Batch.from_data_list([random_dag(n, e, seed) for seed, (n, e) in
                                 enumerate([(40, 70), (25, 30), (9, 0)])])


def weights(gnn):
    def mlp(module):
        return [module[0].weight, module[0].bias, module[2].weight,
                module[2].bias]
    gru = gnn.gru
    return (mlp(gnn.mlp), mlp(gnn.mlp_ve),
            [gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh])


def call(states, sweep, gnn, **changes):
    c = sweep.compressed()
    args = dict(h=states, node_order=c.node_order, level_ptr=c.level_ptr,
                real_ptr=c.real_ptr, real_src=c.real_src,
                virtual_ptr=c.virtual_ptr, virtual_src=c.virtual_src,
                virtual_dist=c.virtual_dist)
    mlp, mlp_ve, gru = weights(gnn)
    args.update(mlp=mlp, mlp_ve=mlp_ve, gru=gru)
    args.update(changes)
    return gated_gnn_sweep(**args)


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-5),
                                       (torch.float64, 1e-12)])
def test_one_sweep_equals_the_level_sweep(batch, dtype, tol):
    torch.manual_seed(0)
    gnn = GatedGNN(HIDDEN).to(dtype)
    h = torch.randn(batch.num_nodes, HIDDEN, dtype=dtype)
    schedule = SweepSchedule.from_data(batch)
    with torch.no_grad():
        for sweep in (schedule.forward, schedule.backward):
            compiled = call(h, sweep, gnn)
            levels = gnn._level_sweep(h, sweep)
            assert compiled.dtype == dtype and not torch.equal(compiled, h)
            torch.testing.assert_close(compiled, levels, atol=tol, rtol=0)


def test_wider_virtual_edge_types_give_the_same_states(batch):
    torch.manual_seed(0)
    gnn = GatedGNN(HIDDEN)
    h = torch.randn(batch.num_nodes, HIDDEN)
    sweep = SweepSchedule.from_data(batch).forward
    c = sweep.compressed()
    assert (c.virtual_src.dtype, c.virtual_dist.dtype) == (torch.int32,
                                                           torch.uint8)
    with torch.no_grad():
        narrow = call(h, sweep, gnn)
        for src, dist in ((torch.long, torch.long), (torch.int32, torch.int16),
                          (torch.long, torch.int32)):
            wide = call(h, sweep, gnn, virtual_src=c.virtual_src.to(src),
                        virtual_dist=c.virtual_dist.to(dist))
            assert torch.equal(narrow, wide), (src, dist)


def test_compressed_layout_lists_every_in_edge_once(batch):
    schedule = SweepSchedule.from_data(batch)
    adjacency = reference_adjacency(batch.edge_index,
                                    batch.virtual_edge_index,
                                    batch.virtual_edge_dist, batch.num_nodes)
    for sweep, (_, real_in, virtual_in) in zip(
            (schedule.forward, schedule.backward), adjacency):
        c = sweep.compressed()
        assert sorted(c.node_order.tolist()) == list(range(batch.num_nodes))
        level = sweep.level[c.node_order]
        # Positions of one level are contiguous and levels ascend.
        assert torch.equal(level, torch.sort(level).values)
        for position, node in enumerate(c.node_order.tolist()):
            real = c.real_src[c.real_ptr[position]:c.real_ptr[position + 1]]
            assert sorted(real.tolist()) == sorted(real_in[node])
            lo, hi = c.virtual_ptr[position], c.virtual_ptr[position + 1]
            assert sorted(zip(c.virtual_src[lo:hi].tolist(),
                              c.virtual_dist[lo:hi].tolist())) == sorted(
                                  virtual_in[node])


def test_result_does_not_depend_on_the_thread_count():
    graphs = [random_dag(60, 150, seed) for seed in range(8)]
    batch = Batch.from_data_list(graphs)
    torch.manual_seed(0)
    gnn = GatedGNN(HIDDEN)
    h = torch.randn(batch.num_nodes, HIDDEN)
    sweep = SweepSchedule.from_data(batch).forward
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(1)
            one = call(h, sweep, gnn)
            torch.set_num_threads(2)
            two = call(h, sweep, gnn)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def test_when_the_compiled_sweep_applies(monkeypatch):
    gnn = GatedGNN(HIDDEN)
    h = torch.randn(5, HIDDEN)
    params = list(gnn.parameters())
    assert not sweep_kernel_applies(h, params)  # gradients wanted
    with torch.no_grad():
        assert sweep_kernel_applies(h, params)
        assert not sweep_kernel_applies(h.half(), params)
        assert not sweep_kernel_applies(h.to('meta'), params)
        monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', '1')
        assert not sweep_kernel_applies(h, params)
    frozen = [p.detach() for p in params]
    monkeypatch.delenv('GHNLIB_DISABLE_EXTENSION')
    assert sweep_kernel_applies(h, frozen)
    assert not sweep_kernel_applies(h.requires_grad_(), frozen)


def test_asking_for_a_gradient_raises(batch):
    gnn = GatedGNN(HIDDEN)
    h = torch.randn(batch.num_nodes, HIDDEN, requires_grad=True)
    out = call(h, SweepSchedule.from_data(batch).forward, gnn)
    with pytest.raises(RuntimeError):
        out.sum().backward()


def layout_of(sweep, **changes):
    c = sweep.compressed()
    arrays = dict(node_order=c.node_order, level_ptr=c.level_ptr,
                  real_ptr=c.real_ptr, real_src=c.real_src,
                  virtual_ptr=c.virtual_ptr, virtual_src=c.virtual_src,
                  virtual_dist=c.virtual_dist)
    arrays.update(changes)
    return arrays


def test_every_built_layout_passes_the_layout_check(batch):
    graphs = [random_dag(n, e, seed) for seed, (n, e) in
              enumerate([(30, 60), (12, 11), (2, 0)])]
    for schedule in (SweepSchedule.from_data(batch),
                     SweepSchedule.from_data_list(graphs + graphs[:2])):
        for sweep in (schedule.forward, schedule.backward):
            assert check_sweep_layout(**layout_of(sweep)) is None
    # The narrow virtual-edge types the schedules build are accepted too.
    c = schedule.forward.compressed()
    assert (c.virtual_src.dtype, c.virtual_dist.dtype) == (torch.int32,
                                                           torch.uint8)


def bad_layouts():
    """(description, layout -> changes, message) of layouts the check
    refuses; each keeps every shape, dtype and device the op accepts."""
    index = torch.tensor
    return [
        ('a node twice', lambda c: dict(node_order=torch.cat(
            [c.node_order[:1], c.node_order[:-1]])),
         r'node_order must visit every node once, but node \d+ comes twice'),
        ('a node id out of range', lambda c: dict(
            node_order=c.node_order + 1), r'node_order\[\d+\] = \d+ is not '
         r'a node id in \[0, 74\)'),
        ('a source out of range', lambda c: dict(
            real_src=torch.full_like(c.real_src, 10**6)),
         r'real_src\[0\] = 1000000 is not a node id'),
        ('a negative virtual source', lambda c: dict(
            virtual_src=torch.cat([c.virtual_src[:-1],
                                   c.virtual_src[-1:] * 0 - 1])),
         r'virtual_src\[\d+\] = -1 is not a node id'),
        ('a pointer that stops short', lambda c: dict(
            virtual_ptr=c.virtual_ptr.clone().fill_(0)),
         'virtual_ptr must run from 0 to'),
        ('a pointer that goes back', lambda c: dict(
            real_ptr=torch.cat([c.real_ptr[:1], c.real_ptr[-1:],
                                c.real_ptr[2:]])),
         r'real_ptr must never decrease, but real_ptr\[2\]'),
        ('levels that do not cover the nodes', lambda c: dict(
            level_ptr=index([0, 1])), 'level_ptr must run from 0 to 74'),
        ('a zero distance', lambda c: dict(
            virtual_dist=torch.zeros_like(c.virtual_dist)),
         'virtual_dist holds 0, which is not a path length'),
        ('a pointer of the wrong length', lambda c: dict(
            real_ptr=c.real_ptr[:-1]), 'real_ptr must have 75 entries'),
        ('float distances', lambda c: dict(
            virtual_dist=c.virtual_dist.float()),
         'virtual_dist must be a 1-D integer tensor'),
    ]


@pytest.mark.parametrize('description,change,message', bad_layouts(),
                         ids=[d for d, _, _ in bad_layouts()])
def test_bad_layouts_are_refused(batch, description, change, message):
    sweep = SweepSchedule.from_data(batch).forward
    changes = change(sweep.compressed())
    with pytest.raises(ValueError, match=message):
        check_sweep_layout(**layout_of(sweep, **changes))
    # gated_gnn_sweep checks the layout before running the op.
    gnn = GatedGNN(HIDDEN)
    h = torch.randn(batch.num_nodes, HIDDEN)
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        call(h, sweep, gnn, **changes)


def bad_calls():
    """Arguments the op itself refuses on every call, with the layout check
    off: shapes, dtypes and devices."""
    def update(**changes):
        return changes

    return [
        ('integer states', lambda h, c: update(h=h.long()),
         'h must be float32 or float64'),
        ('states of another size', lambda h, c: update(h=h[:-1]),
         'node_order must have 73 entries, got 74'),
        ('int32 indices', lambda h, c: update(
            real_src=c.real_src.int()), 'real_src must be a contiguous 1-D '
         'int64 CPU tensor'),
        ('a strided pointer', lambda h, c: update(
            real_ptr=torch.stack([c.real_ptr, c.real_ptr], 1)[:, 0]),
         'real_ptr must be a contiguous 1-D int64'),
        ('float distances', lambda h, c: update(
            virtual_dist=c.virtual_dist.float()), 'integer path lengths'),
        ('int16 sources', lambda h, c: update(
            virtual_src=c.virtual_src.short()), 'int32 or int64 CPU'),
        ('one length too few', lambda h, c: update(
            virtual_dist=c.virtual_dist[:-1]),
         'virtual_dist must have one length per virtual edge'),
        ('a wrong MLP', lambda h, c: update(mlp=[torch.zeros(3, 3)]),
         r'mlp must be \[weight1'),
        ('a wrong GRU weight', lambda h, c: update(
            gru=[torch.zeros(3, HIDDEN)] * 2 + [torch.zeros(3 * HIDDEN)] * 2),
         'gru weight_ih must have shape'),
        ('a float64 MLP', lambda h, c: update(
            mlp_ve=[torch.zeros(HIDDEN, HIDDEN, dtype=torch.float64),
                    torch.zeros(HIDDEN), torch.zeros(HIDDEN, HIDDEN),
                    torch.zeros(HIDDEN)]),
         'mlp_ve must be a Float tensor on cpu like h'),
    ]


@pytest.mark.parametrize('description,change,message', bad_calls(),
                         ids=[d for d, _, _ in bad_calls()])
def test_bad_inputs_are_refused(batch, description, change, message):
    gnn = GatedGNN(HIDDEN)
    h = torch.randn(batch.num_nodes, HIDDEN)
    sweep = SweepSchedule.from_data(batch).forward
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        call(h, sweep, gnn, check_layout=False,
             **change(h, sweep.compressed()))
