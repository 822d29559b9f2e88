import pytest
import torch
from torch import nn

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep import WeightTokenizer
from ghnlib.models import get_model

INPUT_SHAPE = (1, 1, 28, 28)


@pytest.fixture(scope='module')
def tokenizer():
    return WeightTokenizer.from_model(get_model('small_cnn'), INPUT_SHAPE)


def test_layout_follows_the_small_cnn(tokenizer):
    assert [layer.weight for layer in tokenizer.layers] == [
        'features.0.weight', 'features.3.weight', 'features.6.weight',
        'classifier.1.weight', 'classifier.3.weight']
    assert [layer.bias for layer in tokenizer.layers] == [
        'features.0.bias', 'features.3.bias', 'features.6.bias',
        'classifier.1.bias', 'classifier.3.bias']
    # One token per output channel / neuron, as wide as the widest layer
    # (6 x 8 x 5 x 5 conv: 200 weights and a bias).
    assert tokenizer.num_tokens == 8 + 6 + 4 + 20 + 10
    assert tokenizer.width == 8 * 5 * 5 + 1
    assert tokenizer.num_parameters == 2464
    assert tokenizer.layer_index.tolist() == (
        [0] * 8 + [1] * 6 + [2] * 4 + [3] * 20 + [4] * 10)
    assert tokenizer.position[8:14].tolist() == list(range(6))
    assert tokenizer.permutable
    assert repr(tokenizer) == 'WeightTokenizer(layers=5, tokens=48, width=201)'


def test_round_trip_is_the_identity_on_zoo_weights(tokenizer, zoo):
    _, members = zoo
    states = [c.state for m in members for c in m.checkpoints()]
    assert len(states) == 5 * 3
    for state in states:
        tokens, mask = tokenizer.tokenize(state)
        assert tokens.shape == mask.shape == (48, 201)
        assert bool((tokens[~mask] == 0).all())
        back = tokenizer.detokenize(tokens)
        assert back.keys() == state.keys()
        for name, value in state.items():
            assert torch.equal(back[name], value), name


def test_token_holds_incoming_weights_then_bias(tokenizer, zoo):
    state = zoo[1][0].state_dict()
    tokens, mask = tokenizer.tokenize(state)
    row = 8 + 2  # third channel of the second convolution
    expected = torch.cat([state['features.3.weight'][2].flatten(),
                          state['features.3.bias'][2:3]])
    assert torch.equal(tokens[row, :201], expected)
    row = 8 + 6 + 4 + 20 + 9  # last output neuron
    assert torch.equal(tokens[row, :20], state['classifier.3.weight'][9])
    assert tokens[row, 20] == state['classifier.3.bias'][9]
    assert mask[row].sum() == 21


class ShuffledCNN(nn.Module):
    """The small CNN's computation, its modules defined (and named) in
    another order than the data flows."""
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(20, 10)
        self.hidden = nn.Linear(36, 20)
        self.c3 = nn.Conv2d(6, 4, 2)
        self.a_first = nn.Conv2d(1, 8, 5)
        self.b_second = nn.Conv2d(8, 6, 5)

    def forward(self, x):
        x = torch.tanh(nn.functional.max_pool2d(self.a_first(x), 2))
        x = torch.tanh(nn.functional.max_pool2d(self.b_second(x), 2))
        x = torch.tanh(self.c3(x))
        return self.out(torch.tanh(self.hidden(x.flatten(1))))


def test_mapping_comes_from_the_graph_not_the_key_order(tokenizer, zoo):
    shuffled = ShuffledCNN()
    assert next(iter(shuffled.state_dict())) == 'out.weight'
    renamed = dict(zip(['a_first', 'b_second', 'c3', 'hidden', 'out'],
                       ['features.0', 'features.3', 'features.6',
                        'classifier.1', 'classifier.3']))
    state = zoo[1][1].state_dict()
    shuffled.load_state_dict({f'{ours}.{kind}': state[f'{theirs}.{kind}']
                              for ours, theirs in renamed.items()
                              for kind in ('weight', 'bias')})
    theirs = WeightTokenizer.from_model(shuffled, INPUT_SHAPE)
    assert [layer.weight for layer in theirs.layers] == [
        'a_first.weight', 'b_second.weight', 'c3.weight', 'hidden.weight',
        'out.weight']
    assert torch.equal(theirs.tokenize(shuffled.state_dict())[0],
                       tokenizer.tokenize(state)[0])
    assert 'lacks' in tokenizer.describe_mismatch(theirs)
    assert tokenizer.describe_mismatch(tokenizer) is None


def test_permutation_keeps_the_function(tokenizer, zoo, digits):
    model = zoo[1][2].model()
    tokens, _ = tokenizer.tokenize(model.state_dict())
    permuted = tokenizer.permute(tokens, torch.Generator().manual_seed(0))
    assert not torch.equal(permuted, tokens)
    # The output layer keeps its neuron order.
    assert torch.equal(permuted[-10:, :20].sort(dim=1).values,
                       tokens[-10:, :20].sort(dim=1).values)
    other = get_model('small_cnn')
    other.load_state_dict(tokenizer.detokenize(permuted))
    images = torch.stack([digits[2][i][0] for i in range(64)])
    with torch.no_grad():
        assert torch.allclose(other(images), model(images), atol=1e-5)
    batch = tokenizer.permute(torch.stack([tokens, tokens]),
                              torch.Generator().manual_seed(1))
    assert not torch.equal(batch[0], batch[1])  # one permutation each


class Residual(nn.Module):
    def __init__(self, norm=False):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.c = nn.Linear(4, 2)
        self.norm = nn.BatchNorm1d(4) if norm else nn.Identity()

    def forward(self, x):
        hidden = self.a(x)
        return self.c(self.b(self.norm(hidden)) + hidden)


def test_non_chains_are_not_permuted_and_norms_are_refused():
    tokenizer = WeightTokenizer.from_model(Residual(), (2, 4))
    assert not tokenizer.permutable
    with pytest.raises(GhnlibError, match='not a chain'):
        tokenizer.permute(torch.zeros(10, 5))
    with pytest.raises(GhnlibError, match=r"norm.weight.*batch_norm"):
        WeightTokenizer.from_model(Residual(norm=True), (2, 4))


def test_wrong_weights_are_refused(tokenizer):
    state = get_model('small_cnn', num_classes=5).state_dict()
    with pytest.raises(GhnlibError, match=r"'classifier.3.weight' has shape "
                       r'\(5, 20\), expected \(10, 20\)'):
        tokenizer.tokenize(state)
    del state['features.0.bias']
    with pytest.raises(GhnlibError, match='lacks'):
        tokenizer.tokenize(state)
    with pytest.raises(GhnlibError, match=r'expected \(48, 201\)'):
        tokenizer.detokenize(torch.zeros(48, 200))
