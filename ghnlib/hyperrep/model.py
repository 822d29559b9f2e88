r"""The transformer autoencoder of a hyper-representation."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ghnlib.errors import GhnlibError

__all__ = ['WeightAutoencoder']


def _transformer(d_model: int, num_heads: int, dim_feedforward: int,
                 dropout: float, num_layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        d_model, num_heads, dim_feedforward, dropout, activation='gelu',
        batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)


class WeightAutoencoder(nn.Module):
    r"""A transformer encoder that compresses every weight token to a small
    latent vector and a transformer decoder that reconstructs the tokens
    from the latents, after `"Hyper-Representations as Generative Models:
    Sampling Unseen Neural Network Weights"
    <https://arxiv.org/abs/2209.14733>`_:

    .. math::
        \mathbf{z} = g_\theta\left(\mathbf{T} \mathbf{W}_{\mathrm{in}} +
        \mathbf{E}_{\mathrm{layer}} + \mathbf{E}_{\mathrm{pos}}\right)
        \mathbf{W}_{\downarrow}, \qquad
        \hat{\mathbf{T}} = h_\psi\left(\mathbf{z} \mathbf{W}_{\uparrow} +
        \mathbf{E}'_{\mathrm{layer}} + \mathbf{E}'_{\mathrm{pos}}\right)
        \mathbf{W}_{\mathrm{out}},

    where :math:`g_\theta`, :math:`h_\psi` are transformer stacks over the
    :math:`T` tokens and :math:`\mathbf{E}` learned embeddings of each
    token's layer and position. The latent of a network is
    :math:`\mathbf{z} \in \mathbb{R}^{T \times d_z}` (flattened, it is what
    the KDE samples): per-token latents keep the decoder's task local while
    attention lets every token see the whole network. For the contrastive
    term, latents are averaged per layer (invariant to neuron order) and
    projected (:meth:`project`).

    Args:
        token_width (int): Entries per token :math:`W`.
        layer_index (Sequence[int]): The layer of every token.
        position (Sequence[int]): Every token's position in its layer.
        d_model (int, optional): Transformer width. (default: :obj:`64`)
        latent_dim (int, optional): Latent entries per token :math:`d_z`;
            it sets how much of each neuron survives the bottleneck (on the
            digits zoo of small CNNs, 8 / 16 / 32 reconstruct the best
            members at 28 / 55 / 87 % accuracy). (default: :obj:`32`)
        num_heads (int, optional): Attention heads. (default: :obj:`4`)
        num_encoder_layers (int, optional): (default: :obj:`2`)
        num_decoder_layers (int, optional): (default: :obj:`2`)
        dim_feedforward (int, optional): Hidden width of the feed-forward
            blocks. (default: :obj:`None`, :obj:`4 * d_model`)
        dropout (float, optional): (default: :obj:`0.0`)
        projection_dim (int, optional): Output of the contrastive
            projection head. (default: :obj:`32`)

    Shapes:
        - **input:** tokens :math:`[B, T, W]`
        - **output:** reconstructed tokens :math:`[B, T, W]` and latents
          :math:`[B, T, d_z]`
    """
    def __init__(self, token_width: int, layer_index: Sequence[int],
                 position: Sequence[int], *, d_model: int = 64,
                 latent_dim: int = 32, num_heads: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2,
                 dim_feedforward: Optional[int] = None, dropout: float = 0.0,
                 projection_dim: int = 32):
        super().__init__()
        layer_index = torch.as_tensor(list(layer_index), dtype=torch.long)
        position = torch.as_tensor(list(position), dtype=torch.long)
        if layer_index.dim() != 1 or layer_index.shape != position.shape \
                or layer_index.numel() == 0:
            raise GhnlibError('layer_index and position must be two equally '
                              'long, non-empty sequences, one entry per token')
        if d_model % num_heads != 0:
            raise GhnlibError(f'd_model ({d_model}) must be divisible by '
                              f'num_heads ({num_heads})')
        dim_feedforward = dim_feedforward or 4 * d_model
        self.config = dict(
            token_width=int(token_width), layer_index=layer_index.tolist(),
            position=position.tolist(), d_model=d_model,
            latent_dim=latent_dim, num_heads=num_heads,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            dim_feedforward=dim_feedforward, dropout=dropout,
            projection_dim=projection_dim)
        self.token_width = int(token_width)
        self.latent_dim = latent_dim
        self.num_layers = int(layer_index.max()) + 1
        self.register_buffer('layer_index', layer_index, persistent=False)
        self.register_buffer('position', position, persistent=False)
        num_positions = int(position.max()) + 1

        self.token_in = nn.Linear(token_width, d_model)
        self.encoder_layer_embedding = nn.Embedding(self.num_layers, d_model)
        self.encoder_position_embedding = nn.Embedding(num_positions, d_model)
        self.encoder = _transformer(d_model, num_heads, dim_feedforward,
                                    dropout, num_encoder_layers)
        self.to_latent = nn.Sequential(nn.LayerNorm(d_model),
                                       nn.Linear(d_model, latent_dim))
        self.from_latent = nn.Linear(latent_dim, d_model)
        self.decoder_layer_embedding = nn.Embedding(self.num_layers, d_model)
        self.decoder_position_embedding = nn.Embedding(num_positions, d_model)
        self.decoder = _transformer(d_model, num_heads, dim_feedforward,
                                    dropout, num_decoder_layers)
        self.token_out = nn.Sequential(nn.LayerNorm(d_model),
                                       nn.Linear(d_model, token_width))
        self.projection = nn.Sequential(
            nn.Linear(self.num_layers * latent_dim, d_model), nn.ReLU(),
            nn.Linear(d_model, projection_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def num_tokens(self) -> int:
        return self.layer_index.numel()

    def _check(self, tensor: Tensor, last: int, what: str) -> None:
        if tensor.dim() != 3 or tensor.size(1) != self.num_tokens or \
                tensor.size(2) != last:
            raise GhnlibError(f'{what} have shape {tuple(tensor.shape)}, '
                              f'expected [B, {self.num_tokens}, {last}]')

    def encode(self, tokens: Tensor) -> Tensor:
        r"""Latents of a batch of token sequences, :math:`[B, T, d_z]`."""
        self._check(tokens, self.token_width, 'tokens')
        hidden = (self.token_in(tokens) +
                  self.encoder_layer_embedding(self.layer_index) +
                  self.encoder_position_embedding(self.position))
        return self.to_latent(self.encoder(hidden))

    def decode(self, latent: Tensor) -> Tensor:
        r"""Tokens reconstructed from latents, :math:`[B, T, W]`."""
        self._check(latent, self.latent_dim, 'latents')
        hidden = (self.from_latent(latent) +
                  self.decoder_layer_embedding(self.layer_index) +
                  self.decoder_position_embedding(self.position))
        return self.token_out(self.decoder(hidden))

    def project(self, latent: Tensor) -> Tensor:
        r"""The contrastive embedding: latents averaged per layer, then
        projected, :math:`[B, d_{\mathrm{proj}}]`."""
        self._check(latent, self.latent_dim, 'latents')
        pooled = latent.new_zeros(latent.size(0), self.num_layers,
                                  self.latent_dim)
        pooled.index_add_(1, self.layer_index, latent)
        counts = torch.bincount(self.layer_index,
                                minlength=self.num_layers).to(latent.dtype)
        pooled = pooled / counts.view(1, -1, 1)
        return self.projection(pooled.flatten(1))

    def forward(self, tokens: Tensor) -> Tuple[Tensor, Tensor]:
        latent = self.encode(tokens)
        return self.decode(latent), latent

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(tokens={self.num_tokens}, '
                f'width={self.token_width}, '
                f"d_model={self.config['d_model']}, "
                f'latent_dim={self.latent_dim})')
