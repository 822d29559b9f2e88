r"""A seeded generator of random architectures for training graph
hypernetworks, in the spirit of DeepNets-1M from the `"Parameter Prediction
for Unseen Deep Architectures" <https://arxiv.org/abs/2110.13100>`_ paper."""
import dataclasses
import hashlib
import math
import random
from typing import List, Optional, Sequence, Tuple, Union

from ghnlib.archspace.network import RandomNet, build, count_parameters
from ghnlib.archspace.spec import (ACTIVATIONS, FAMILIES, HEAD_POOLS,
                                   MERGES, NORMS, OP_KERNELS, OP_KINDS,
                                   TOKEN_BLOCKS, ArchRecipe, CellSpec,
                                   ConvStageSpec, HeadSpec, NodeSpec, OpSpec,
                                   StemSpec, TokenBlockSpec, TokenStageSpec,
                                   halved_size)
from ghnlib.errors import GhnlibError

__all__ = ['ArchSpace', 'sample', 'sample_recipes', 'CONNECTIVITY',
           'TRAIN_SEEDS']

#: How the nodes of a cell connect: a chain, one or two random earlier
#: states, or every earlier state (dense).
CONNECTIVITY = ('chain', 'random', 'dense')

#: Training architectures use seeds :math:`0 \leq s <` ``TRAIN_SEEDS``;
#: the test splits use seeds above (:mod:`ghnlib.archspace.splits`).
TRAIN_SEEDS = 2 ** 32

# Draws over the budget that are thrown away before the widths of a draw
# are scaled down instead, and draws before giving up.
_RESAMPLES = 8
_ATTEMPTS = 32
_WIDTH_STEP = 8
_MIN_TOKENS = 4


def _stream_seed(seed: int) -> int:
    # Mersenne Twister seeded with related integers can repeat a stream
    # (random.Random(2) and random.Random(2**32 + 2) draw the same numbers),
    # which would put training architectures into the test splits; a digest
    # of the seed keeps the streams apart.
    digest = hashlib.sha256(f'ghnlib.archspace:{seed}'.encode()).digest()
    return int.from_bytes(digest, 'big')


def _round_width(value: float) -> int:
    return max(_WIDTH_STEP, int(value / _WIDTH_STEP + 0.5) * _WIDTH_STEP)


def _check_range(name: str, value, low: int = 1) -> Tuple[int, int]:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool)
                       for v in value)
            or not low <= value[0] <= value[1]):
        raise GhnlibError(f'ArchSpace.{name}: expected a (min, max) pair of '
                          f'integers with {low} <= min <= max, got {value!r}')
    return tuple(value)


def _check_subset(name: str, value, allowed: Sequence[str]) -> Tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise GhnlibError(f'ArchSpace.{name}: expected a sequence of names '
                          f'from {list(allowed)}, got {value!r}')
    unknown = [v for v in value if v not in allowed]
    if unknown or not value:
        raise GhnlibError(f'ArchSpace.{name}: expected a non-empty sequence '
                          f'of names from {list(allowed)}, got {list(value)}')
    return tuple(value)


def _check_positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GhnlibError(f'ArchSpace.{name}: expected a positive integer, '
                          f'got {value!r}')


@dataclasses.dataclass(frozen=True)
class ArchSpace:
    r"""A space of random image classifiers, sampled from seeds.

    An architecture is a convolutional stem and up to :obj:`max_stages`
    stages of cells (each stage after the first halves the resolution with
    a strided convolution or max / average pooling), or patch tokens with
    transformer / MLP-Mixer blocks, or convolutional stages followed by
    tokens; then global pooling and a linear or MLP head. A cell is a small
    DAG (DARTS / DeepNets-1M style) whose edges are :math:`k \times k`
    convolutions (:math:`k \in \{1, 3, 5, 7\}`), grouped, depthwise,
    depthwise-separable or dilated convolutions, pooling or the identity,
    merged by sums or concatenations, with chain, random or dense
    connectivity, optional squeeze-excitation and a residual sum. One norm
    (batch, layer, group or none) and one activation (ReLU, GELU, SiLU,
    hardswish) are drawn per network; token blocks use
    :class:`torch.nn.LayerNorm` unless the norm is none.

    Every choice is drawn in a fixed order from a :class:`random.Random`
    seeded with a SHA-256 digest of the seed, so a seed gives the same
    :class:`~ghnlib.archspace.ArchRecipe` in every process. A draw with
    more than :obj:`max_params` parameters is drawn again (the generator's
    stream goes on, so this stays deterministic); after a few such draws,
    the widths of a draw are scaled down until it fits. Every channel count
    is a multiple of 8.

    Args:
        in_channels (int, optional): Input channels. (default: :obj:`3`)
        num_classes (int, optional): Classes. (default: :obj:`10`)
        input_size (int or Tuple[int, int], optional): Input height and
            width. (default: :obj:`32`)
        width (Tuple[int, int], optional): Range of every stage's and the
            tokens' channels. (default: :obj:`(16, 64)`)
        depth (Tuple[int, int], optional): Range of the number of cells plus
            token blocks. (default: :obj:`(2, 8)`)
        nodes (Tuple[int, int], optional): Range of the nodes per cell.
            (default: :obj:`(1, 4)`)
        max_params (int, optional): Parameter budget; :obj:`None` for none.
            (default: :obj:`1_000_000`)
        families (Sequence[str], optional): Families to draw from
            (:obj:`ghnlib.archspace.FAMILIES`). (default: all)
        norms (Sequence[str], optional): Norms to draw from
            (:obj:`ghnlib.archspace.NORMS`). (default: all)
        activations (Sequence[str], optional): Activations to draw from.
            (default: all)
        ops (Sequence[str], optional): Cell ops to draw from
            (:obj:`ghnlib.archspace.OP_KINDS`). (default: all)
        connectivity (Sequence[str], optional): Cell connectivities
            (:obj:`CONNECTIVITY`). (default: all)
        token_blocks (Sequence[str], optional): Token blocks
            (:obj:`ghnlib.archspace.TOKEN_BLOCKS`). (default: all)
        max_stages (int, optional): Most convolutional stages.
            (default: :obj:`4`)
        max_tokens (int, optional): Most tokens, where a patch size allows.
            (default: :obj:`64`)
    """
    in_channels: int = 3
    num_classes: int = 10
    input_size: Union[int, Tuple[int, int]] = 32
    width: Tuple[int, int] = (16, 64)
    depth: Tuple[int, int] = (2, 8)
    nodes: Tuple[int, int] = (1, 4)
    max_params: Optional[int] = 1_000_000
    families: Tuple[str, ...] = FAMILIES
    norms: Tuple[str, ...] = NORMS
    activations: Tuple[str, ...] = ACTIVATIONS
    ops: Tuple[str, ...] = OP_KINDS
    connectivity: Tuple[str, ...] = CONNECTIVITY
    token_blocks: Tuple[str, ...] = TOKEN_BLOCKS
    max_stages: int = 4
    max_tokens: int = 64

    def __post_init__(self):
        _check_positive('in_channels', self.in_channels)
        _check_positive('num_classes', self.num_classes)
        size = self.input_size
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size, size)
        if (not isinstance(size, (tuple, list)) or len(size) != 2 or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1
                for s in size)):
            raise GhnlibError(f'ArchSpace.input_size: expected a positive '
                              f'integer or a (height, width) pair of them, '
                              f'got {self.input_size!r}')
        self._store('input_size', tuple(size))
        self._store('width', _check_range('width', self.width))
        if self.width[1] < _WIDTH_STEP or not self._widths(*self.width):
            raise GhnlibError(f'ArchSpace.width: channel counts are '
                              f'multiples of {_WIDTH_STEP}, and {self.width} '
                              f'holds none; widen the range')
        self._store('depth', _check_range('depth', self.depth))
        self._store('nodes', _check_range('nodes', self.nodes))
        if self.max_params is not None:
            _check_positive('max_params', self.max_params)
        for name, allowed in (('families', FAMILIES), ('norms', NORMS),
                              ('activations', ACTIVATIONS),
                              ('ops', OP_KINDS),
                              ('connectivity', CONNECTIVITY),
                              ('token_blocks', TOKEN_BLOCKS)):
            self._store(name, _check_subset(name, getattr(self, name),
                                            allowed))
        if 'hybrid' in self.families and self.depth[1] < 2:
            raise GhnlibError('ArchSpace.depth: a hybrid needs at least one '
                              'cell and one token block; allow a depth of 2 '
                              'or leave out the hybrid family')
        _check_positive('max_stages', self.max_stages)
        _check_positive('max_tokens', self.max_tokens)

    def _store(self, name: str, value) -> None:
        # The dataclass is frozen; its arguments are normalised once, here.
        object.__setattr__(self, name, value)

    # -- public API --------------------------------------------------------

    def recipe(self, seed: int) -> ArchRecipe:
        """The architecture of :obj:`seed` (any non-negative integer; the
        same in every process)."""
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise GhnlibError(f'ArchSpace.recipe: the seed must be a '
                              f'non-negative integer, got {seed!r}')
        rng = random.Random(_stream_seed(seed))
        fewest = None
        for attempt in range(_ATTEMPTS):
            recipe = self._draw(rng, seed)
            if self.max_params is None:
                return recipe
            params = count_parameters(recipe)
            if params <= self.max_params:
                return recipe
            if attempt >= _RESAMPLES:
                fitted = self._fit(recipe)
                if fitted is not None:
                    return fitted
            fewest = params if fewest is None else min(fewest, params)
        raise GhnlibError(
            f'ArchSpace: no architecture of seed {seed} fits max_params='
            f'{self.max_params} in {_ATTEMPTS} draws, even with the narrowest '
            f'widths (the smallest had {fewest} parameters); raise max_params '
            f'or lower width, depth or nodes')

    def sample_recipes(self, n: int, seed: int = 0) -> List[ArchRecipe]:
        r"""The recipes of seeds :obj:`seed`, …, :obj:`seed + n - 1`, all
        below :obj:`TRAIN_SEEDS` (the range of training architectures)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise GhnlibError(f'ArchSpace.sample: n must be a non-negative '
                              f'integer, got {n!r}')
        if (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0
                or seed + n > TRAIN_SEEDS):
            raise GhnlibError(
                f'ArchSpace.sample: training seeds are 0 … {TRAIN_SEEDS - 1} '
                f'(the test splits use the seeds above); got seed={seed!r} '
                f'with n={n}')
        return [self.recipe(seed + i) for i in range(n)]

    def sample(self, n: int, seed: int = 0) -> List[RandomNet]:
        """The networks of :meth:`sample_recipes` (each with its
        :attr:`~ghnlib.archspace.RandomNet.name` and
        :attr:`~ghnlib.archspace.RandomNet.recipe`)."""
        return [build(recipe) for recipe in self.sample_recipes(n, seed)]

    # -- drawing -----------------------------------------------------------

    @staticmethod
    def _widths(low: int, high: int) -> List[int]:
        first = -(-low // _WIDTH_STEP) * _WIDTH_STEP
        return list(range(max(first, _WIDTH_STEP), high + 1, _WIDTH_STEP))

    def _clamp_width(self, value: float) -> int:
        widths = self._widths(*self.width)
        return min(widths[-1], max(widths[0], _round_width(value)))

    def _draw(self, rng: random.Random, seed: int) -> ArchRecipe:
        family = rng.choice(self.families)
        norm = rng.choice(self.norms)
        act = rng.choice(self.activations)
        low, high = self.depth
        if family == 'hybrid':
            low, high = max(low, 2), max(high, 2)
        depth = rng.randint(low, high)
        if family == 'cnn':
            token_depth = 0
        elif family == 'transformer':
            token_depth = depth
        else:
            token_depth = rng.randint(1, depth - 1)
        size = self.input_size
        stem, stages = None, ()
        if family != 'transformer':
            stem, stages, size = self._draw_convolutional(
                rng, depth - token_depth)
        tokens = None
        if token_depth:
            # Transformer and mixer blocks normalise each token with
            # LayerNorm whatever norm the convolutions drew; only 'none'
            # carries over.
            token_norm = 'none' if norm == 'none' else 'layer'
            tokens = self._draw_tokens(rng, token_depth, size, token_norm)
            if family == 'transformer':
                norm = token_norm
        pool = rng.choice(HEAD_POOLS)
        hidden = tuple(rng.choice(self._widths(*self.width))
                       for _ in range(rng.choice((0, 0, 1, 2))))
        head = HeadSpec(pool='avg' if tokens else pool, hidden=hidden)
        return ArchRecipe(seed=seed, family=family,
                          in_channels=self.in_channels,
                          num_classes=self.num_classes,
                          input_size=self.input_size, norm=norm, act=act,
                          stem=stem, stages=stages, tokens=tokens, head=head)

    def _draw_convolutional(self, rng: random.Random, cells: int):
        height, width = self.input_size
        stride = 2 if min(height, width) >= 16 and rng.random() < 0.5 else 1
        stem_kernel = rng.choice((3, 5, 7))
        height, width = halved_size(height, stride), halved_size(width, stride)
        halvings, side = 0, min(height, width)
        while side >= 4:
            side, halvings = halved_size(side), halvings + 1
        num_stages = rng.randint(1, min(self.max_stages, cells, halvings + 1))
        cuts = sorted(rng.sample(range(1, cells), num_stages - 1))
        counts = [b - a for a, b in zip([0, *cuts], [*cuts, cells])]
        base = rng.choice(self._widths(*self.width))
        growth = rng.choice((1.0, 1.5, 2.0))
        stages = []
        for index, count in enumerate(counts):
            stage_width = self._clamp_width(base * growth ** index)
            downsample = 'none'
            if index:
                downsample = rng.choice(('conv', 'max_pool', 'avg_pool'))
                height, width = halved_size(height), halved_size(width)
            if rng.random() < 0.5:
                shared = self._draw_cell(rng, stage_width)
                stage_cells = (shared, ) * count
            else:
                stage_cells = tuple(self._draw_cell(rng, stage_width)
                                    for _ in range(count))
            stages.append(ConvStageSpec(width=stage_width,
                                        downsample=downsample,
                                        cells=stage_cells))
        stem = StemSpec(width=stages[0].width, kernel=stem_kernel,
                        stride=stride)
        return stem, tuple(stages), (height, width)

    def _draw_op(self, rng: random.Random, width: int) -> OpSpec:
        kind = rng.choice(self.ops)
        kernel = rng.choice(OP_KERNELS[kind])
        if kind == 'grouped_conv':
            groups = rng.choice(sorted({g for g in (2, 4, 8) if width % g == 0}
                                       | {width}))
            return OpSpec(kind, kernel, groups=groups)
        if kind == 'dil_conv':
            return OpSpec(kind, kernel, dilation=2)
        return OpSpec(kind, kernel)

    def _draw_cell(self, rng: random.Random, width: int) -> CellSpec:
        num_nodes = rng.randint(*self.nodes)
        connectivity = rng.choice(self.connectivity)
        nodes = []
        for i in range(num_nodes):
            if connectivity == 'chain':
                inputs = (i, )
            elif connectivity == 'dense':
                inputs = tuple(range(i + 1))
            else:
                count = rng.randint(1, min(2, i + 1))
                inputs = tuple(sorted(rng.sample(range(i + 1), count)))
            ops = tuple(self._draw_op(rng, width) for _ in inputs)
            merge = rng.choice(MERGES) if len(inputs) > 1 else 'sum'
            nodes.append(NodeSpec(inputs=inputs, ops=ops, merge=merge))
        read = {j - 1 for node in nodes for j in node.inputs}
        outputs = tuple(i for i in range(num_nodes) if i not in read)
        if connectivity == 'dense' and num_nodes > 1 and rng.random() < 0.5:
            outputs = tuple(range(num_nodes))  # DenseNet-like: every node
        output_merge = rng.choice(MERGES) if len(outputs) > 1 else 'sum'
        residual = rng.random() < 0.5
        se_channels = (_round_width(width / 4) if rng.random() < 0.25 else 0)
        return CellSpec(nodes=tuple(nodes), outputs=outputs,
                        output_merge=output_merge, residual=residual,
                        se_channels=se_channels)

    def _draw_tokens(self, rng: random.Random, blocks: int,
                     size: Tuple[int, int], norm: str) -> TokenStageSpec:
        height, width = size
        common = math.gcd(height, width)
        patches = [p for p in range(1, common + 1) if common % p == 0]
        tokens = {p: (height // p) * (width // p) for p in patches}
        fits = [p for p in patches
                if _MIN_TOKENS <= tokens[p] <= self.max_tokens]
        fits = fits or [p for p in patches if tokens[p] <= self.max_tokens]
        patch = rng.choice(fits or [common])
        num_tokens = (height // patch) * (width // patch)
        token_width = rng.choice(self._widths(*self.width))
        heads = [h for h in (1, 2, 4, 8)
                 if token_width % h == 0 and token_width // h >= 8] or [1]
        specs = []
        for _ in range(blocks):
            kind = rng.choice(self.token_blocks)
            mlp_hidden = _round_width(token_width * rng.choice((1, 2, 4)))
            if kind == 'mixer':
                token_hidden = _round_width(
                    num_tokens * rng.choice((0.5, 1, 2)))
                specs.append(TokenBlockSpec(kind, mlp_hidden,
                                            token_hidden=token_hidden))
            else:
                specs.append(TokenBlockSpec(kind, mlp_hidden,
                                            heads=rng.choice(heads)))
        pos_embedding = rng.random() < 0.75
        return TokenStageSpec(width=token_width, patch=patch,
                              blocks=tuple(specs),
                              pos_embedding=pos_embedding, norm=norm)

    # -- the budget --------------------------------------------------------

    def _fit(self, recipe: ArchRecipe) -> Optional[ArchRecipe]:
        """:obj:`recipe` with its widths scaled down until it fits the
        budget, or :obj:`None` if the narrowest widths do not fit."""
        factor, previous = 0.75, recipe
        while True:
            scaled = self._scaled(recipe, factor)
            if count_parameters(scaled) <= self.max_params:
                return scaled
            if scaled == previous:
                return None
            factor, previous = factor * 0.75, scaled

    def _scaled(self, recipe: ArchRecipe, factor: float) -> ArchRecipe:
        low = self._widths(*self.width)[0]
        wide = lambda w: max(low, _round_width(w * factor))  # noqa: E731
        hidden = lambda w: _round_width(w * factor)  # noqa: E731

        def scaled_cell(cell: CellSpec, old: int, new: int) -> CellSpec:
            nodes = tuple(dataclasses.replace(node, ops=tuple(
                dataclasses.replace(op, groups=new) if op.groups == old > 1
                else op for op in node.ops)) for node in cell.nodes)
            return dataclasses.replace(
                cell, nodes=nodes,
                se_channels=(hidden(cell.se_channels) if cell.se_channels
                             else 0))

        stages = tuple(dataclasses.replace(
            stage, width=wide(stage.width),
            cells=tuple(scaled_cell(cell, stage.width, wide(stage.width))
                        for cell in stage.cells)) for stage in recipe.stages)
        stem = (dataclasses.replace(recipe.stem, width=stages[0].width)
                if recipe.stem is not None else None)
        tokens = recipe.tokens
        if tokens is not None:
            tokens = dataclasses.replace(
                tokens, width=wide(tokens.width), blocks=tuple(
                    dataclasses.replace(
                        block, mlp_hidden=hidden(block.mlp_hidden),
                        token_hidden=(hidden(block.token_hidden)
                                      if block.token_hidden else 0))
                    for block in tokens.blocks))
        head = dataclasses.replace(recipe.head, hidden=tuple(
            hidden(w) for w in recipe.head.hidden))
        return dataclasses.replace(recipe, stem=stem, stages=stages,
                                   tokens=tokens, head=head)


def sample_recipes(n: int, seed: int = 0, **space) -> List[ArchRecipe]:
    """The recipes of :obj:`n` training architectures from seed
    :obj:`seed` on; :obj:`space` are the arguments of :class:`ArchSpace`."""
    return ArchSpace(**space).sample_recipes(n, seed)


def sample(n: int, seed: int = 0, **space) -> List[RandomNet]:
    """:obj:`n` training networks from seed :obj:`seed` on; :obj:`space`
    are the arguments of :class:`ArchSpace`."""
    return ArchSpace(**space).sample(n, seed)
