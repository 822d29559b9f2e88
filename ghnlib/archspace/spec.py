r"""The recipe of a random architecture: its seed and every choice that
builds it, as frozen, JSON-serialisable dataclasses."""
import dataclasses
import hashlib
import json
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

from ghnlib.errors import GhnlibError

__all__ = [
    'ARCHSPACE_VERSION', 'FAMILIES', 'NORMS', 'ACTIVATIONS', 'OP_KINDS',
    'OP_KERNELS', 'DOWNSAMPLES', 'MERGES', 'TOKEN_BLOCKS', 'HEAD_POOLS',
    'BLOCK_KINDS',
    'OpSpec', 'NodeSpec', 'CellSpec', 'StemSpec', 'ConvStageSpec',
    'TokenBlockSpec', 'TokenStageSpec', 'HeadSpec', 'ArchRecipe',
    'halved_size',
]

#: Version of what a recipe means: a change to how :func:`build` turns a
#: recipe into modules bumps it, and recipes of another version are refused.
ARCHSPACE_VERSION = 1

#: Network families: convolutional cells only, convolutional cells followed
#: by blocks on patch tokens, or patch tokens only.
FAMILIES = ('cnn', 'hybrid', 'transformer')
NORMS = ('batch', 'layer', 'group', 'none')
ACTIVATIONS = ('relu', 'gelu', 'silu', 'hardswish')
#: The ops on the edges of a cell.
OP_KINDS = ('conv', 'grouped_conv', 'sep_conv', 'dil_conv', 'max_pool',
            'avg_pool', 'identity')
DOWNSAMPLES = ('none', 'conv', 'max_pool', 'avg_pool')
MERGES = ('sum', 'concat')
#: Blocks on tokens: a transformer block with :class:`torch.nn.
#: MultiheadAttention`, one whose attention is built from linear layers, and
#: an MLP-Mixer block.
TOKEN_BLOCKS = ('mha', 'self_attention', 'mixer')
HEAD_POOLS = ('avg', 'max')

_CONV_KERNELS = (1, 3, 5, 7)
#: The kernel sizes of each op kind.
OP_KERNELS = {
    'conv': _CONV_KERNELS,
    'grouped_conv': (1, 3, 5),
    'sep_conv': (3, 5, 7),
    'dil_conv': (3, 5),
    'max_pool': (3, ),
    'avg_pool': (3, ),
    'identity': (1, ),
}

#: Every block kind :meth:`ArchRecipe.block_kinds` can report.
BLOCK_KINDS: Tuple[str, ...] = (
    'conv_stem', 'patch_embedding', 'pos_embedding',
    'downsample_conv', 'downsample_max_pool', 'downsample_avg_pool',
    *(f'conv{k}x{k}' for k in _CONV_KERNELS),
    'grouped_conv', 'depthwise_conv', 'sep_conv', 'dil_conv', 'max_pool',
    'avg_pool', 'identity',
    'sum_merge', 'concat_merge', 'residual', 'dense', 'squeeze_excitation',
    *(f'{norm}_norm' for norm in NORMS),
    *ACTIVATIONS,
    *TOKEN_BLOCKS,
    'global_avg_pool', 'global_max_pool', 'token_mean', 'linear_head',
    'mlp_head',
)


def _fail(what: str, message: str) -> None:
    raise GhnlibError(f'{what}: {message}')


def _check_int(what: str, value: Any, low: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        _fail(what, f'expected an integer of at least {low}, got {value!r}')


def _check_choice(what: str, value: Any, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        _fail(what, f'expected one of {", ".join(map(repr, choices))}, got '
              f'{value!r}')


def _as_tuple(spec: Any, name: str) -> None:
    value = getattr(spec, name)
    if not isinstance(value, (tuple, list)):
        _fail(f'{type(spec).__name__}.{name}',
              f'expected a sequence, got {type(value).__name__}')
    object.__setattr__(spec, name, tuple(value))


def halved_size(size: int, stride: int = 2) -> int:
    r"""The spatial size after a window op with odd kernel :math:`k`, padding
    :math:`\lfloor k / 2 \rfloor` and :obj:`stride` (every strided op of the
    space): :math:`\lceil \mathrm{size} / \mathrm{stride} \rceil`."""
    return -(-size // stride)


def _from_mapping(cls, data: Any, convert: Dict[str, Any] = None):
    """Builds the dataclass :obj:`cls` from a mapping, converting the fields
    named in :obj:`convert` with the given functions."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        _fail(cls.__name__, f'expected a mapping, got {type(data).__name__}')
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        _fail(cls.__name__, f'unknown fields {unknown}; expected '
              f'{sorted(names)}')
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING}
    missing = sorted(required - set(data))
    if missing:
        _fail(cls.__name__, f'missing fields {missing}')
    values = dict(data)
    for name, function in (convert or {}).items():
        if name in values:
            values[name] = function(values[name])
    return cls(**values)


def _tuple_of(cls):
    def convert(items):
        if not isinstance(items, (tuple, list)):
            _fail(cls.__name__, f'expected a list, got {type(items).__name__}')
        return tuple(cls.from_dict(item) for item in items)
    return convert


def _optional(cls):
    def convert(item):
        return None if item is None else cls.from_dict(item)
    return convert


@dataclasses.dataclass(frozen=True)
class OpSpec:
    r"""One op on an edge of a cell.

    Args:
        kind (str): One of :obj:`OP_KINDS`: a :math:`k \times k`
            convolution, a grouped one, a depthwise-separable one
            (:math:`k \times k` depthwise, then :math:`1 \times 1`), a dilated
            one, :math:`3 \times 3` max or average pooling, or the identity.
        kernel (int, optional): The kernel size :math:`k`.
            (default: :obj:`1`)
        groups (int, optional): Groups of a grouped convolution.
            (default: :obj:`1`)
        dilation (int, optional): Dilation of a dilated convolution.
            (default: :obj:`1`)
    """
    kind: str
    kernel: int = 1
    groups: int = 1
    dilation: int = 1

    def __post_init__(self):
        _check_choice('OpSpec.kind', self.kind, OP_KINDS)
        _check_choice(f'OpSpec.kernel of a {self.kind}', self.kernel,
                      OP_KERNELS[self.kind])
        _check_int('OpSpec.groups', self.groups)
        _check_int('OpSpec.dilation', self.dilation)
        if (self.kind == 'grouped_conv') != (self.groups > 1):
            _fail('OpSpec.groups', f'a grouped_conv needs groups > 1 and '
                  f'other ops groups=1; got {self.kind} with groups='
                  f'{self.groups}')
        if (self.kind == 'dil_conv') != (self.dilation > 1):
            _fail('OpSpec.dilation', f'a dil_conv needs dilation > 1 and '
                  f'other ops dilation=1; got {self.kind} with dilation='
                  f'{self.dilation}')

    @classmethod
    def from_dict(cls, data: Mapping) -> 'OpSpec':
        return _from_mapping(cls, data)


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    r"""A node of a cell: one op per input, merged by a sum or by a
    concatenation followed by a :math:`1 \times 1` convolution.

    Args:
        inputs (Tuple[int, ...]): The states it reads, in increasing order:
            :obj:`0` is the cell's input, :obj:`j` the output of node
            :obj:`j - 1`.
        ops (Tuple[OpSpec, ...]): One op per input.
        merge (str, optional): :obj:`'sum'` or :obj:`'concat'`.
            (default: :obj:`'sum'`)
    """
    inputs: Tuple[int, ...]
    ops: Tuple[OpSpec, ...]
    merge: str = 'sum'

    def __post_init__(self):
        _as_tuple(self, 'inputs')
        _as_tuple(self, 'ops')
        if not self.inputs:
            _fail('NodeSpec.inputs', 'a node needs at least one input')
        for i in self.inputs:
            _check_int('NodeSpec.inputs', i, low=0)
        if list(self.inputs) != sorted(set(self.inputs)):
            _fail('NodeSpec.inputs', f'expected distinct states in '
                  f'increasing order, got {list(self.inputs)}')
        if len(self.ops) != len(self.inputs):
            _fail('NodeSpec.ops', f'expected one op per input '
                  f'({len(self.inputs)}), got {len(self.ops)}')
        if not all(isinstance(op, OpSpec) for op in self.ops):
            _fail('NodeSpec.ops', 'expected OpSpec items')
        _check_choice('NodeSpec.merge', self.merge, MERGES)

    @classmethod
    def from_dict(cls, data: Mapping) -> 'NodeSpec':
        return _from_mapping(cls, data, {'ops': _tuple_of(OpSpec)})


@dataclasses.dataclass(frozen=True)
class CellSpec:
    r"""A cell: a small DAG of nodes on a feature map of fixed width.

    The cell's output is the merge of the nodes in :obj:`outputs`, then
    optionally squeeze-excitation, then optionally the residual sum with
    the cell's input.

    Args:
        nodes (Tuple[NodeSpec, ...]): The nodes, node :obj:`i` reading states
            :obj:`0 … i` only.
        outputs (Tuple[int, ...]): Indices of the nodes merged into the
            output; every node no later node reads must be one of them, so
            that every parameter reaches the output.
        output_merge (str, optional): :obj:`'sum'` or :obj:`'concat'`.
            (default: :obj:`'sum'`)
        residual (bool, optional): Add the cell's input to its output.
            (default: :obj:`False`)
        se_channels (int, optional): Hidden channels of a squeeze-excitation
            on the output; :obj:`0` for none. (default: :obj:`0`)
    """
    nodes: Tuple[NodeSpec, ...]
    outputs: Tuple[int, ...]
    output_merge: str = 'sum'
    residual: bool = False
    se_channels: int = 0

    def __post_init__(self):
        _as_tuple(self, 'nodes')
        _as_tuple(self, 'outputs')
        if not self.nodes:
            _fail('CellSpec.nodes', 'a cell needs at least one node')
        if not all(isinstance(node, NodeSpec) for node in self.nodes):
            _fail('CellSpec.nodes', 'expected NodeSpec items')
        for i, node in enumerate(self.nodes):
            if node.inputs[-1] > i:
                _fail('CellSpec.nodes', f'node {i} reads state '
                      f'{node.inputs[-1]}; it can read states 0 … {i} only')
        if (not self.outputs or list(self.outputs) != sorted(set(self.outputs))
                or not all(isinstance(i, int) and 0 <= i < len(self.nodes)
                           for i in self.outputs)):
            _fail('CellSpec.outputs', f'expected distinct node indices in '
                  f'increasing order below {len(self.nodes)}, got '
                  f'{list(self.outputs)}')
        dangling = sorted(set(self.leaves()) - set(self.outputs))
        if dangling:
            _fail('CellSpec.outputs', f'nodes {dangling} are read by no node '
                  'and not merged into the output, so their parameters would '
                  'be unused; add them to outputs')
        _check_choice('CellSpec.output_merge', self.output_merge, MERGES)
        if not isinstance(self.residual, bool):
            _fail('CellSpec.residual', f'expected a bool, got '
                  f'{self.residual!r}')
        _check_int('CellSpec.se_channels', self.se_channels, low=0)

    def leaves(self) -> List[int]:
        """The nodes no later node reads."""
        read = {j - 1 for node in self.nodes for j in node.inputs}
        return [i for i in range(len(self.nodes)) if i not in read]

    @property
    def is_dense(self) -> bool:
        """Whether every node reads the cell's input and every earlier node
        (dense connectivity), with at least two nodes."""
        return len(self.nodes) >= 2 and all(
            node.inputs == tuple(range(i + 1))
            for i, node in enumerate(self.nodes))

    @classmethod
    def from_dict(cls, data: Mapping) -> 'CellSpec':
        return _from_mapping(cls, data, {'nodes': _tuple_of(NodeSpec)})


@dataclasses.dataclass(frozen=True)
class StemSpec:
    r"""The convolutional stem: a :math:`k \times k` convolution, norm and
    activation on the image.

    Args:
        width (int): Output channels.
        kernel (int): Kernel size, odd.
        stride (int, optional): :obj:`1` or :obj:`2`. (default: :obj:`1`)
    """
    width: int
    kernel: int
    stride: int = 1

    def __post_init__(self):
        _check_int('StemSpec.width', self.width)
        _check_int('StemSpec.kernel', self.kernel)
        if self.kernel % 2 == 0:
            _fail('StemSpec.kernel', f'expected an odd kernel, got '
                  f'{self.kernel}')
        _check_choice('StemSpec.stride', self.stride, (1, 2))

    @classmethod
    def from_dict(cls, data: Mapping) -> 'StemSpec':
        return _from_mapping(cls, data)


@dataclasses.dataclass(frozen=True)
class ConvStageSpec:
    r"""A stage of cells at one width and resolution.

    Args:
        width (int): Channels of every cell.
        downsample (str): How the stage enters: :obj:`'none'` (a
            :math:`1 \times 1` convolution only where the width changes), a
            stride-2 :math:`3 \times 3` convolution, or stride-2
            :math:`3 \times 3` max / average pooling (then a
            :math:`1 \times 1` convolution where the width changes).
        cells (Tuple[CellSpec, ...]): The cells, in order.
    """
    width: int
    downsample: str
    cells: Tuple[CellSpec, ...]

    def __post_init__(self):
        _check_int('ConvStageSpec.width', self.width)
        _check_choice('ConvStageSpec.downsample', self.downsample, DOWNSAMPLES)
        _as_tuple(self, 'cells')
        if not self.cells:
            _fail('ConvStageSpec.cells', 'a stage needs at least one cell')
        if not all(isinstance(cell, CellSpec) for cell in self.cells):
            _fail('ConvStageSpec.cells', 'expected CellSpec items')
        for cell in self.cells:
            for node in cell.nodes:
                for op in node.ops:
                    if self.width % op.groups:
                        _fail('ConvStageSpec.cells', f'a grouped_conv with '
                              f'{op.groups} groups does not divide the '
                              f'width {self.width}')

    @classmethod
    def from_dict(cls, data: Mapping) -> 'ConvStageSpec':
        return _from_mapping(cls, data, {'cells': _tuple_of(CellSpec)})


@dataclasses.dataclass(frozen=True)
class TokenBlockSpec:
    r"""A pre-norm residual block on tokens.

    Args:
        kind (str): One of :obj:`TOKEN_BLOCKS`.
        mlp_hidden (int): Hidden units of the channel MLP.
        heads (int, optional): Attention heads (attention blocks), dividing
            the token width. (default: :obj:`1`)
        token_hidden (int, optional): Hidden units of the token-mixing MLP
            (:obj:`'mixer'` blocks only, :obj:`0` otherwise).
            (default: :obj:`0`)
    """
    kind: str
    mlp_hidden: int
    heads: int = 1
    token_hidden: int = 0

    def __post_init__(self):
        _check_choice('TokenBlockSpec.kind', self.kind, TOKEN_BLOCKS)
        _check_int('TokenBlockSpec.mlp_hidden', self.mlp_hidden)
        _check_int('TokenBlockSpec.heads', self.heads)
        mixer = self.kind == 'mixer'
        _check_int('TokenBlockSpec.token_hidden', self.token_hidden,
                   low=1 if mixer else 0)
        if not mixer and self.token_hidden:
            _fail('TokenBlockSpec.token_hidden', f'only mixer blocks mix '
                  f'tokens with an MLP; expected 0 for {self.kind}')
        if mixer and self.heads != 1:
            _fail('TokenBlockSpec.heads', 'mixer blocks have no heads; '
                  'expected 1')

    @classmethod
    def from_dict(cls, data: Mapping) -> 'TokenBlockSpec':
        return _from_mapping(cls, data)


@dataclasses.dataclass(frozen=True)
class TokenStageSpec:
    r"""Patch tokens and the blocks on them.

    The feature map (the image, or the output of the convolutional stages)
    is cut into :math:`p \times p` patches by a convolution of kernel and
    stride :math:`p`, giving :math:`N = HW / p^2` tokens of :obj:`width`
    channels.

    Args:
        width (int): Token channels.
        patch (int): Patch size :math:`p`, dividing the feature map's height
            and width.
        blocks (Tuple[TokenBlockSpec, ...]): The blocks, in order.
        pos_embedding (bool, optional): Add a learned position embedding.
            (default: :obj:`True`)
        norm (str, optional): :obj:`'layer'` (:class:`torch.nn.LayerNorm`
            over the channels of each token) or :obj:`'none'`.
            (default: :obj:`'layer'`)
    """
    width: int
    patch: int
    blocks: Tuple[TokenBlockSpec, ...]
    pos_embedding: bool = True
    norm: str = 'layer'

    def __post_init__(self):
        _check_int('TokenStageSpec.width', self.width)
        _check_int('TokenStageSpec.patch', self.patch)
        _as_tuple(self, 'blocks')
        if not self.blocks:
            _fail('TokenStageSpec.blocks', 'expected at least one block')
        if not all(isinstance(block, TokenBlockSpec) for block in self.blocks):
            _fail('TokenStageSpec.blocks', 'expected TokenBlockSpec items')
        for block in self.blocks:
            if self.width % block.heads:
                _fail('TokenStageSpec.blocks', f'{block.heads} heads do not '
                      f'divide the token width {self.width}')
        if not isinstance(self.pos_embedding, bool):
            _fail('TokenStageSpec.pos_embedding', f'expected a bool, got '
                  f'{self.pos_embedding!r}')
        _check_choice('TokenStageSpec.norm', self.norm, ('layer', 'none'))

    @classmethod
    def from_dict(cls, data: Mapping) -> 'TokenStageSpec':
        return _from_mapping(cls, data, {'blocks': _tuple_of(TokenBlockSpec)})


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    r"""The classifier: global pooling (the mean over tokens after token
    blocks), hidden linear layers with the activation, a linear layer.

    Args:
        pool (str, optional): :obj:`'avg'` or :obj:`'max'` global pooling of
            a feature map (tokens are always averaged). (default: :obj:`'avg'`)
        hidden (Tuple[int, ...], optional): Widths of the hidden layers;
            empty for a linear head. (default: :obj:`()`)
    """
    pool: str = 'avg'
    hidden: Tuple[int, ...] = ()

    def __post_init__(self):
        _check_choice('HeadSpec.pool', self.pool, HEAD_POOLS)
        _as_tuple(self, 'hidden')
        for width in self.hidden:
            _check_int('HeadSpec.hidden', width)

    @classmethod
    def from_dict(cls, data: Mapping) -> 'HeadSpec':
        return _from_mapping(cls, data)


@dataclasses.dataclass(frozen=True)
class ArchRecipe:
    r"""Everything that builds one random architecture:
    :func:`~ghnlib.archspace.build` turns it into the same modules, with the
    same parameter shapes, every time.

    Args:
        seed (int): The seed the architecture was sampled from.
        family (str): One of :obj:`FAMILIES`.
        in_channels (int): Channels of the input images.
        num_classes (int): Outputs of the classifier.
        input_size (Tuple[int, int]): Height and width of the input images.
        norm (str): The norm of the convolutional layers, one of
            :obj:`NORMS`: :class:`torch.nn.BatchNorm2d`, a
            :class:`torch.nn.LayerNorm` over the channels at each position,
            :class:`torch.nn.GroupNorm`, or none (then convolutions have a
            bias).
        act (str): The activation, one of :obj:`ACTIVATIONS`.
        stem (StemSpec, optional): The convolutional stem; :obj:`None` for
            a transformer.
        stages (Tuple[ConvStageSpec, ...]): The convolutional stages (empty
            for a transformer).
        tokens (TokenStageSpec, optional): The token stage (:obj:`None` for
            a CNN).
        head (HeadSpec): The classifier.
        version (int, optional): :obj:`ARCHSPACE_VERSION` of the recipe.
            (default: :obj:`ARCHSPACE_VERSION`)
    """
    seed: int
    family: str
    in_channels: int
    num_classes: int
    input_size: Tuple[int, int]
    norm: str
    act: str
    stem: Optional[StemSpec]
    stages: Tuple[ConvStageSpec, ...]
    tokens: Optional[TokenStageSpec]
    head: HeadSpec
    version: int = ARCHSPACE_VERSION

    def __post_init__(self):
        if self.version != ARCHSPACE_VERSION:
            _fail('ArchRecipe.version', f'the recipe is of version '
                  f'{self.version!r} but this ghnlib builds version '
                  f'{ARCHSPACE_VERSION}; sample it again with this version')
        _check_int('ArchRecipe.seed', self.seed, low=0)
        _check_choice('ArchRecipe.family', self.family, FAMILIES)
        _check_int('ArchRecipe.in_channels', self.in_channels)
        _check_int('ArchRecipe.num_classes', self.num_classes)
        _as_tuple(self, 'input_size')
        if len(self.input_size) != 2:
            _fail('ArchRecipe.input_size', f'expected (height, width), got '
                  f'{self.input_size}')
        for size in self.input_size:
            _check_int('ArchRecipe.input_size', size)
        _check_choice('ArchRecipe.norm', self.norm, NORMS)
        _check_choice('ArchRecipe.act', self.act, ACTIVATIONS)
        _as_tuple(self, 'stages')
        if not isinstance(self.head, HeadSpec):
            _fail('ArchRecipe.head', 'expected a HeadSpec')
        convolutional = self.family != 'transformer'
        if convolutional != isinstance(self.stem, StemSpec):
            _fail('ArchRecipe.stem', f'a {self.family} needs '
                  f'{"a StemSpec" if convolutional else "stem=None"}')
        if convolutional != bool(self.stages):
            _fail('ArchRecipe.stages', f'a {self.family} needs '
                  f'{"convolutional stages" if convolutional else "none"}')
        if not all(isinstance(stage, ConvStageSpec) for stage in self.stages):
            _fail('ArchRecipe.stages', 'expected ConvStageSpec items')
        if self.stages and self.stages[0].downsample != 'none':
            _fail('ArchRecipe.stages', 'the first stage follows the stem and '
                  "must have downsample='none'")
        tokenised = self.family != 'cnn'
        if tokenised != isinstance(self.tokens, TokenStageSpec):
            _fail('ArchRecipe.tokens', f'a {self.family} needs '
                  f'{"a TokenStageSpec" if tokenised else "tokens=None"}')
        height, width = self.feature_size()
        if self.tokens is not None and (height % self.tokens.patch
                                        or width % self.tokens.patch):
            _fail('TokenStageSpec.patch', f'patch {self.tokens.patch} does '
                  f'not divide the {height}x{width} feature map it cuts')

    def feature_size(self) -> Tuple[int, int]:
        """Height and width of the feature map after the convolutional
        stages (the input size for a transformer)."""
        height, width = self.input_size
        strides = ([self.stem.stride] if self.stem is not None else []) + [
            2 for stage in self.stages if stage.downsample != 'none']
        for stride in strides:
            height = halved_size(height, stride)
            width = halved_size(width, stride)
        return height, width

    @property
    def num_tokens(self) -> int:
        """Tokens of the token stage (:obj:`0` without one)."""
        if self.tokens is None:
            return 0
        height, width = self.feature_size()
        return (height // self.tokens.patch) * (width // self.tokens.patch)

    @property
    def depth(self) -> int:
        """Cells plus token blocks."""
        cells = sum(len(stage.cells) for stage in self.stages)
        return cells + (len(self.tokens.blocks) if self.tokens else 0)

    def to_dict(self) -> Dict[str, Any]:
        """The recipe as plain dicts, lists and numbers (JSON-ready)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        """The recipe as canonical JSON (sorted keys, no spaces)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True,
                          separators=(',', ':'))

    @classmethod
    def from_dict(cls, data: Mapping) -> 'ArchRecipe':
        """The recipe from :meth:`to_dict`'s output; malformed data raises
        :class:`~ghnlib.errors.GhnlibError` naming the field."""
        return _from_mapping(cls, data, {
            'stem': _optional(StemSpec),
            'stages': _tuple_of(ConvStageSpec),
            'tokens': _optional(TokenStageSpec),
            'head': HeadSpec.from_dict,
        })

    @classmethod
    def from_json(cls, text: str) -> 'ArchRecipe':
        """The recipe from :meth:`to_json`'s output."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise GhnlibError(f'ArchRecipe.from_json: not valid JSON '
                              f'({error})') from None
        return cls.from_dict(data)

    def signature(self) -> str:
        """Canonical JSON of every choice but the seed: two recipes with the
        same signature build the same architecture."""
        data = dataclasses.asdict(self)
        del data['seed']
        return json.dumps(data, sort_keys=True, separators=(',', ':'))

    @property
    def name(self) -> str:
        """A readable, unique name: family, seed and a digest of the
        choices."""
        digest = hashlib.sha1(self.signature().encode()).hexdigest()[:8]
        return f'{self.family}-{self.seed}-{digest}'

    def block_kinds(self) -> FrozenSet[str]:
        """The kinds of blocks (names from :obj:`BLOCK_KINDS`) the
        architecture uses."""
        kinds = {self.act, f'{self.norm}_norm' if self.stages else None}
        if self.stem is not None:
            kinds.add('conv_stem')
        for stage in self.stages:
            if stage.downsample != 'none':
                kinds.add(f'downsample_{stage.downsample}')
            for cell in stage.cells:
                kinds |= _cell_kinds(cell, stage.width)
        if self.tokens is not None:
            kinds.add('patch_embedding')
            kinds.add(f'{self.tokens.norm}_norm')
            if self.tokens.pos_embedding:
                kinds.add('pos_embedding')
            kinds.update(block.kind for block in self.tokens.blocks)
            kinds.add('residual')
            kinds.add('token_mean')
        else:
            kinds.add(f'global_{self.head.pool}_pool')
        kinds.add('mlp_head' if self.head.hidden else 'linear_head')
        kinds.discard(None)
        return frozenset(kinds)


def _cell_kinds(cell: CellSpec, width: int) -> set:
    kinds = set()
    for node in cell.nodes:
        for op in node.ops:
            if op.kind == 'conv':
                kinds.add(f'conv{op.kernel}x{op.kernel}')
            elif op.kind == 'grouped_conv':
                kinds.add('depthwise_conv' if op.groups == width
                          else 'grouped_conv')
            else:
                kinds.add(op.kind)
        if len(node.inputs) > 1:
            kinds.add(f'{node.merge}_merge')
    if len(cell.outputs) > 1:
        kinds.add(f'{cell.output_merge}_merge')
    if cell.residual:
        kinds.add('residual')
    if cell.is_dense:
        kinds.add('dense')
    if cell.se_channels:
        kinds.add('squeeze_excitation')
    return kinds
