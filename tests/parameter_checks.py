"""Comparisons of a model's parameters, shared by the tests of
initialisation schemes."""
import torch


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def parameters(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def assert_differ(a, b):
    weights = [name for name in a if a[name].dim() > 1]
    assert weights and all(not torch.equal(a[n], b[n]) for n in weights)
