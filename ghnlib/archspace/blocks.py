r"""The building blocks of the architecture space, as plain
:class:`torch.nn.Module` s that :mod:`torch.fx` traces (no value-dependent
Python in any ``forward``)."""
from typing import List, Sequence

import torch
import torch.nn as nn

from ghnlib.archspace.spec import (CellSpec, ConvStageSpec, HeadSpec,
                                   OpSpec, StemSpec, TokenBlockSpec,
                                   TokenStageSpec)
from ghnlib.errors import GhnlibError

__all__ = [
    'make_norm', 'make_activation', 'ChannelLayerNorm', 'ConvNormAct',
    'SeparableConv', 'cell_op', 'SumMerge', 'ConcatMerge',
    'SqueezeExcitation', 'Cell', 'Downsample', 'ConvStage', 'conv_stem',
    'PatchEmbedding', 'MLP', 'MultiheadSelfAttention', 'SelfAttention',
    'TransformerBlock', 'MixerBlock', 'TokenStage', 'ClassifierHead',
]

_ACTIVATIONS = {
    'relu': nn.ReLU,
    'gelu': nn.GELU,
    'silu': nn.SiLU,
    'hardswish': nn.Hardswish,
}


def _group_count(channels: int) -> int:
    for groups in (8, 4, 2):
        if channels % groups == 0 and channels > groups:
            return groups
    return 1


class ChannelLayerNorm(nn.Module):
    r"""Layer normalisation over the channels at each position of a
    :math:`(N, C, H, W)` feature map: a :class:`torch.nn.LayerNorm` on the
    channels-last view (as in ConvNeXt),

    .. math::
        y_{n,:,h,w} = \frac{x_{n,:,h,w} - \mathrm{E}[x_{n,:,h,w}]}
        {\sqrt{\mathrm{Var}[x_{n,:,h,w}] + \epsilon}} \odot \gamma + \beta

    Args:
        channels (int): Channels :math:`C`.

    Shapes:
        - **input:** :math:`(N, C, H, W)`
        - **output:** :math:`(N, C, H, W)`
    """
    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.norm.normalized_shape[0]})'


def make_norm(kind: str, channels: int) -> nn.Module:
    """The norm layer :obj:`kind` (``'batch'``, ``'layer'``, ``'group'``,
    ``'none'``) for :obj:`channels` channels of a feature map; group norm
    takes 8, 4 or 2 groups, the most that divide the channels."""
    if kind == 'batch':
        return nn.BatchNorm2d(channels)
    if kind == 'layer':
        return ChannelLayerNorm(channels)
    if kind == 'group':
        return nn.GroupNorm(_group_count(channels), channels)
    if kind == 'none':
        return nn.Identity()
    raise GhnlibError(f"unknown norm {kind!r}; expected 'batch', 'layer', "
                      "'group' or 'none'")


def make_activation(kind: str) -> nn.Module:
    """The activation :obj:`kind` (``'relu'``, ``'gelu'``, ``'silu'``,
    ``'hardswish'``)."""
    if kind not in _ACTIVATIONS:
        raise GhnlibError(f'unknown activation {kind!r}; expected one of '
                          f'{", ".join(map(repr, _ACTIVATIONS))}')
    return _ACTIVATIONS[kind]()


class ConvNormAct(nn.Sequential):
    r"""A convolution with "same" padding, a norm and an activation (the
    activation left out when :obj:`act` is :obj:`None`); the convolution
    has a bias only without a norm.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel (int): Odd kernel size :math:`k`.
        norm (str): The norm (see :func:`make_norm`).
        act (str, optional): The activation. (default: :obj:`None`)
        stride (int, optional): Stride. (default: :obj:`1`)
        groups (int, optional): Groups. (default: :obj:`1`)
        dilation (int, optional): Dilation; the padding is
            :math:`d \lfloor k / 2 \rfloor`. (default: :obj:`1`)

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, C_{out}, \lceil H / s \rceil,
          \lceil W / s \rceil)`
    """
    def __init__(self, in_channels: int, out_channels: int, kernel: int,
                 norm: str, act: str = None, stride: int = 1, groups: int = 1,
                 dilation: int = 1):
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel, stride=stride,
                      padding=dilation * (kernel // 2), dilation=dilation,
                      groups=groups, bias=norm == 'none'),
            make_norm(norm, out_channels),
        ]
        if act is not None:
            layers.append(make_activation(act))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    r"""A depthwise-separable convolution: a :math:`k \times k` depthwise
    convolution, a :math:`1 \times 1` pointwise one, a norm and an
    activation.

    Args:
        channels (int): Channels (in and out).
        kernel (int): Odd kernel size of the depthwise convolution.
        norm (str): The norm (see :func:`make_norm`).
        act (str): The activation.

    Shapes:
        - **input:** :math:`(N, C, H, W)`
        - **output:** :math:`(N, C, H, W)`
    """
    def __init__(self, channels: int, kernel: int, norm: str, act: str):
        super().__init__(
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2,
                      groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=norm == 'none'),
            make_norm(norm, channels),
            make_activation(act),
        )


def cell_op(spec: OpSpec, width: int, norm: str, act: str) -> nn.Module:
    """The module of one cell op on a feature map of :obj:`width` channels;
    every op keeps the shape."""
    if spec.kind in ('conv', 'grouped_conv', 'dil_conv'):
        return ConvNormAct(width, width, spec.kernel, norm, act,
                           groups=spec.groups, dilation=spec.dilation)
    if spec.kind == 'sep_conv':
        return SeparableConv(width, spec.kernel, norm, act)
    if spec.kind == 'max_pool':
        return nn.MaxPool2d(spec.kernel, stride=1, padding=spec.kernel // 2)
    if spec.kind == 'avg_pool':
        return nn.AvgPool2d(spec.kernel, stride=1, padding=spec.kernel // 2,
                            count_include_pad=False)
    return nn.Identity()


class SumMerge(nn.Module):
    r"""The sum of its inputs, :math:`y = \sum_i x_i` (a single input
    passes through).

    Shapes:
        - **input:** a list of tensors of one shape
        - **output:** that shape
    """
    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class ConcatMerge(nn.Module):
    r"""Concatenates its inputs along the channels and projects them back
    to :obj:`channels` with a :math:`1 \times 1` convolution and a norm.

    Args:
        num_inputs (int): Number of inputs.
        channels (int): Channels of each input and of the output.
        norm (str): The norm (see :func:`make_norm`).

    Shapes:
        - **input:** a list of :math:`(N, C, H, W)` tensors
        - **output:** :math:`(N, C, H, W)`
    """
    def __init__(self, num_inputs: int, channels: int, norm: str):
        super().__init__()
        self.project = ConvNormAct(num_inputs * channels, channels, 1, norm)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        return self.project(torch.cat(inputs, dim=1))


def _merge(kind: str, num_inputs: int, channels: int, norm: str) -> nn.Module:
    if kind == 'concat' and num_inputs > 1:
        return ConcatMerge(num_inputs, channels, norm)
    return SumMerge()


class SqueezeExcitation(nn.Module):
    r"""Squeeze-excitation from the `"Squeeze-and-Excitation Networks"
    <https://arxiv.org/abs/1709.01507>`_ paper: channels rescaled by gates
    computed from their global average,

    .. math::
        y = x \odot \sigma\left(W_2\, \phi(W_1 \bar{x} + b_1) + b_2\right)

    Args:
        channels (int): Channels :math:`C`.
        hidden (int): Hidden channels of the gate.
        act (str): The activation :math:`\phi`.

    Shapes:
        - **input:** :math:`(N, C, H, W)`
        - **output:** :math:`(N, C, H, W)`
    """
    def __init__(self, channels: int, hidden: int, act: str):
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = make_activation(act)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.gate(self.expand(self.act(self.reduce(scale))))
        return x * scale


class Cell(nn.Module):
    r"""A cell (:class:`~ghnlib.archspace.CellSpec`): node :math:`i`
    computes

    .. math::
        s_{i+1} = \mathrm{merge}_i\left(\{o_{ij}(s_j) : j \in
        \mathrm{inputs}_i\}\right)

    from the states :math:`s_0` (the cell's input), :math:`s_1, \ldots`;
    the output merges the output nodes, then applies squeeze-excitation and
    the residual sum where the spec asks for them.

    Args:
        spec (CellSpec): The cell.
        width (int): Channels.
        norm (str): The norm of its layers.
        act (str): The activation of its layers.

    Shapes:
        - **input:** :math:`(N, C, H, W)`
        - **output:** :math:`(N, C, H, W)`
    """
    def __init__(self, spec: CellSpec, width: int, norm: str, act: str):
        super().__init__()
        self.node_inputs = tuple(node.inputs for node in spec.nodes)
        self.outputs = tuple(spec.outputs)
        self.residual = spec.residual
        self.ops = nn.ModuleList(
            nn.ModuleList(cell_op(op, width, norm, act) for op in node.ops)
            for node in spec.nodes)
        self.merges = nn.ModuleList(
            _merge(node.merge, len(node.inputs), width, norm)
            for node in spec.nodes)
        self.output_merge = _merge(spec.output_merge, len(spec.outputs),
                                   width, norm)
        self.se = (SqueezeExcitation(width, spec.se_channels, act)
                   if spec.se_channels else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for inputs, ops, merge in zip(self.node_inputs, self.ops, self.merges):
            states.append(merge([op(states[j]) for j, op in zip(inputs, ops)]))
        out = self.output_merge([states[i + 1] for i in self.outputs])
        out = self.se(out)
        if self.residual:
            out = out + x
        return out


class Downsample(nn.Sequential):
    r"""The entry of a stage (see :class:`~ghnlib.archspace.ConvStageSpec`):
    a stride-2 convolution, or stride-2 pooling, or nothing, followed by a
    :math:`1 \times 1` convolution and norm where the width changes.

    Args:
        kind (str): ``'none'``, ``'conv'``, ``'max_pool'`` or
            ``'avg_pool'``.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        norm (str): The norm.
        act (str): The activation (after a strided convolution).

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, C_{out}, H', W')`, halved (rounded up)
          unless :obj:`kind` is ``'none'``
    """
    def __init__(self, kind: str, in_channels: int, out_channels: int,
                 norm: str, act: str):
        if kind == 'conv':
            super().__init__(ConvNormAct(in_channels, out_channels, 3, norm,
                                         act, stride=2))
            return
        layers = []
        if kind == 'max_pool':
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        elif kind == 'avg_pool':
            layers.append(nn.AvgPool2d(3, stride=2, padding=1,
                                       count_include_pad=False))
        if in_channels != out_channels:
            layers.append(ConvNormAct(in_channels, out_channels, 1, norm))
        super().__init__(*layers)


class ConvStage(nn.Sequential):
    """A stage (:class:`~ghnlib.archspace.ConvStageSpec`): its
    :class:`Downsample`, then its cells.

    Args:
        spec (ConvStageSpec): The stage.
        in_channels (int): Channels entering the stage.
        norm (str): The norm of its layers.
        act (str): The activation of its layers.
    """
    def __init__(self, spec: ConvStageSpec, in_channels: int, norm: str,
                 act: str):
        super().__init__(
            Downsample(spec.downsample, in_channels, spec.width, norm, act),
            *(Cell(cell, spec.width, norm, act) for cell in spec.cells))


def conv_stem(spec: StemSpec, in_channels: int, norm: str,
              act: str) -> ConvNormAct:
    """The convolutional stem of :obj:`spec`."""
    return ConvNormAct(in_channels, spec.width, spec.kernel, norm, act,
                       stride=spec.stride)


class PatchEmbedding(nn.Module):
    r"""Cuts a feature map into :math:`p \times p` patches and embeds each
    as a token (a convolution of kernel and stride :math:`p`), then adds a
    learned position embedding :math:`E_{\mathrm{pos}}` if asked:

    .. math::
        z = \mathrm{patches}(x)\, W + E_{\mathrm{pos}}

    Args:
        in_channels (int): Channels of the feature map.
        width (int): Token channels :math:`D`.
        patch (int): Patch size :math:`p`.
        num_tokens (int): Number of tokens :math:`L = HW / p^2`.
        pos_embedding (bool, optional): Add a position embedding.
            (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(N, C, H, W)`
        - **output:** :math:`(N, L, D)`
    """
    def __init__(self, in_channels: int, width: int, patch: int,
                 num_tokens: int, pos_embedding: bool = True):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, width, patch, stride=patch)
        if pos_embedding:
            self.pos = nn.Parameter(torch.empty(1, num_tokens, width))
        else:
            self.register_parameter('pos', None)
        self.with_pos = pos_embedding
        self.reset_parameters()

    def reset_parameters(self):
        r"""Resets the position embedding (truncated normal, std 0.02, as
        ViT); the projection has its own."""
        if self.pos is not None:
            nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        if self.with_pos:
            tokens = tokens + self.pos
        return tokens


class MLP(nn.Sequential):
    r"""Two linear layers with an activation between them,
    :math:`y = W_2\, \phi(W_1 x + b_1) + b_2`, on the last dimension.

    Args:
        features (int): Input and output features.
        hidden (int): Hidden units.
        act (str): The activation :math:`\phi`.

    Shapes:
        - **input:** :math:`(*, F)`
        - **output:** :math:`(*, F)`
    """
    def __init__(self, features: int, hidden: int, act: str):
        super().__init__(nn.Linear(features, hidden), make_activation(act),
                         nn.Linear(hidden, features))


def _token_norm(kind: str, width: int) -> nn.Module:
    return nn.LayerNorm(width) if kind == 'layer' else nn.Identity()


class MultiheadSelfAttention(nn.Module):
    r"""Self-attention with :class:`torch.nn.MultiheadAttention`
    (queries, keys and values all the tokens).

    Args:
        width (int): Token channels.
        heads (int): Attention heads.

    Shapes:
        - **input:** :math:`(N, L, D)`
        - **output:** :math:`(N, L, D)`
    """
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class SelfAttention(nn.Module):
    r"""Multi-head self-attention built from linear layers, from the
    `"Attention Is All You Need" <https://arxiv.org/abs/1706.03762>`_
    paper:

    .. math::
        \mathrm{head}_h = \mathrm{softmax}\left(\frac{Q_h K_h^\top}
        {\sqrt{d}}\right) V_h, \qquad y = [\mathrm{head}_1, \ldots,
        \mathrm{head}_H]\, W_O

    with :math:`Q = x W_Q`, :math:`K = x W_K`, :math:`V = x W_V` split into
    :math:`H` heads of :math:`d = D / H` channels.

    Args:
        width (int): Token channels :math:`D`.
        heads (int): Heads :math:`H`, dividing :math:`D`.

    Shapes:
        - **input:** :math:`(N, L, D)`
        - **output:** :math:`(N, L, D)`
    """
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.scale = self.head_dim ** -0.5
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._split(self.query(x))
        k = self._split(self.key(x))
        v = self._split(self.value(x))
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.out((weights @ v).transpose(1, 2).flatten(2))


class TransformerBlock(nn.Module):
    r"""A pre-norm transformer block,

    .. math::
        x' = x + \mathrm{Attn}(\mathrm{LN}(x)), \qquad
        y = x' + \mathrm{MLP}(\mathrm{LN}(x'))

    Args:
        spec (TokenBlockSpec): The block (``'mha'``: attention with
            :class:`MultiheadSelfAttention`, ``'self_attention'``: with
            :class:`SelfAttention`).
        width (int): Token channels.
        norm (str): ``'layer'`` or ``'none'``.
        act (str): The activation of the MLP.

    Shapes:
        - **input:** :math:`(N, L, D)`
        - **output:** :math:`(N, L, D)`
    """
    def __init__(self, spec: TokenBlockSpec, width: int, norm: str, act: str):
        super().__init__()
        attention = (MultiheadSelfAttention if spec.kind == 'mha'
                     else SelfAttention)
        self.norm1 = _token_norm(norm, width)
        self.attn = attention(width, spec.heads)
        self.norm2 = _token_norm(norm, width)
        self.mlp = MLP(width, spec.mlp_hidden, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MixerBlock(nn.Module):
    r"""A block of the `"MLP-Mixer" <https://arxiv.org/abs/2105.01601>`_
    paper: an MLP across tokens, then an MLP across channels,

    .. math::
        x' = x + \left(\mathrm{MLP}_{\mathrm{tok}}(\mathrm{LN}(x)^\top)
        \right)^\top, \qquad y = x' + \mathrm{MLP}_{\mathrm{ch}}
        (\mathrm{LN}(x'))

    Args:
        spec (TokenBlockSpec): The block.
        width (int): Token channels :math:`D`.
        num_tokens (int): Tokens :math:`L`.
        norm (str): ``'layer'`` or ``'none'``.
        act (str): The activation of the MLPs.

    Shapes:
        - **input:** :math:`(N, L, D)`
        - **output:** :math:`(N, L, D)`
    """
    def __init__(self, spec: TokenBlockSpec, width: int, num_tokens: int,
                 norm: str, act: str):
        super().__init__()
        self.norm1 = _token_norm(norm, width)
        self.token_mlp = MLP(num_tokens, spec.token_hidden, act)
        self.norm2 = _token_norm(norm, width)
        self.channel_mlp = MLP(width, spec.mlp_hidden, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class TokenStage(nn.Module):
    r"""The token stage (:class:`~ghnlib.archspace.TokenStageSpec`): patch
    embedding, the blocks, and a final norm.

    Args:
        spec (TokenStageSpec): The stage.
        in_channels (int): Channels of the feature map.
        num_tokens (int): Tokens :math:`L`.
        act (str): The activation of its MLPs.

    Shapes:
        - **input:** :math:`(N, C, H, W)`
        - **output:** :math:`(N, L, D)`
    """
    def __init__(self, spec: TokenStageSpec, in_channels: int,
                 num_tokens: int, act: str):
        super().__init__()
        self.embed = PatchEmbedding(in_channels, spec.width, spec.patch,
                                    num_tokens, spec.pos_embedding)
        self.blocks = nn.Sequential(*(
            MixerBlock(block, spec.width, num_tokens, spec.norm, act)
            if block.kind == 'mixer' else
            TransformerBlock(block, spec.width, spec.norm, act)
            for block in spec.blocks))
        self.norm = _token_norm(spec.norm, spec.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.embed(x)))


class ClassifierHead(nn.Module):
    r"""Global pooling, then an MLP classifier: hidden linear layers with
    the activation, and a linear layer to the classes.

    Args:
        spec (HeadSpec): The head.
        in_features (int): Channels of the features.
        num_classes (int): Classes.
        act (str): The activation of the hidden layers.
        tokens (bool, optional): The features are tokens
            :math:`(N, L, D)`, averaged over :math:`L`; otherwise a feature
            map :math:`(N, C, H, W)`, pooled as :obj:`spec.pool` says.
            (default: :obj:`False`)

    Shapes:
        - **input:** :math:`(N, C, H, W)` or :math:`(N, L, D)`
        - **output:** :math:`(N, \mathrm{classes})`
    """
    def __init__(self, spec: HeadSpec, in_features: int, num_classes: int,
                 act: str, tokens: bool = False):
        super().__init__()
        self.tokens = tokens
        if tokens:
            self.pool = nn.Identity()
        elif spec.pool == 'max':
            self.pool = nn.AdaptiveMaxPool2d(1)
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
        layers: List[nn.Module] = []
        widths: Sequence[int] = (in_features, *spec.hidden)
        for features, hidden in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(features, hidden), make_activation(act)]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tokens:
            x = x.mean(dim=1)
        else:
            x = self.pool(x).flatten(1)
        return self.classifier(x)
