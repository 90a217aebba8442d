"""DDiT: the diffusion transformer score network of SEDD, with the official state-dict names.

A bidirectional transformer whose blocks are modulated (adaLN) by an embedding of the total noise
sigma, with rotary position embeddings. It returns log concrete scores log s(x)_{i,v}, zero at the
current token. Attention is `scaled_dot_product_attention` (CPU or CUDA; no flash-attn needed).
The forward holds no autocast: precision is the caller's (`precision.py`); only attention on CPU runs
in float32 when a backward follows, where torch's bf16 attention backward is the slow one.

`causal=True` (no noise level) makes the same network a left-to-right language model: the AR
baseline of training/ar.py. Two options serve fast sampling. `forward(x, sigma, rows)` runs the output head (final norm, the
(D, V) projection, the sigma scaling) only at the selected positions and returns (N, V): the
sampler asks only for slots that can still change. `time_conditioning=False` drops sigma from the
network (adaLN then sees a zero condition, i.e. learns plain biases); with `scale_by_sigma` the
log-score is then a time-independent network output minus log(e^sigma - 1), as in RADD (Ou et al.,
2024), which lets the samplers reuse a row's output while its tokens do not change.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class LayerNorm(nn.Module):
    """Bias-free LayerNorm computed in float32 whatever the autocast dtype."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            x = F.layer_norm(x.float(), [x.shape[-1]])
        return x * self.weight


class Rotary(nn.Module):
    """Rotary position embedding (rotate-half layout) for queries and keys."""

    def __init__(self, head_dim, base=10_000):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim))

    def forward(self, length, device):
        freqs = torch.outer(torch.arange(length, device=device).float(), self.inv_freq)  # (L, D/2)
        emb = torch.cat([freqs, freqs], dim=-1)  # (L, D)
        return emb.cos(), emb.sin()


def apply_rotary(x, cos, sin):  # x: (B, H, L, D)
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of sigma followed by an MLP (official name: sigma_map)."""

    def __init__(self, hidden_size, frequency_size=256):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, sigma):  # (B,) -> (B, hidden)
        half = self.frequency_size // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=sigma.device).float() / half)
        args = sigma[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class EmbeddingLayer(nn.Module):
    def __init__(self, dim, vocab_size):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, dim))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, x):
        return self.embedding[x]


class DDiTBlock(nn.Module):
    def __init__(self, dim, n_heads, cond_dim, mlp_ratio=4, dropout=0.1):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.norm1 = LayerNorm(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * dim, dim)
        )
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * dim)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def _residual(self, skip, x, gate):
        return skip + gate * F.dropout(x, self.dropout, self.training)

    def forward(self, x, cos_sin, c, causal=False):  # x: (B, L, D), c: (B, cond)
        B, L, D = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c)[:, None].chunk(6, dim=2)
        qkv = self.attn_qkv(modulate(self.norm1(x), shift1, scale1))  # (B, L, 3D)
        q, k, v = qkv.view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # (B, H, L, d)
        cos, sin = cos_sin
        # Attention in float32 when a backward follows on CPU: there torch's bf16 attention backward takes
        # about 3x the time of fp32's forward and backward together (benchmarks/RESULTS.md); its bf16
        # forward is the faster one, so inference keeps v's dtype.
        work = torch.float32 if x.device.type == "cpu" and torch.is_grad_enabled() else v.dtype
        with torch.autocast(x.device.type, enabled=False):
            q, k = apply_rotary(q.float(), cos, sin).to(work), apply_rotary(k.float(), cos, sin).to(work)
            attn = F.scaled_dot_product_attention(q, k, v.to(work), is_causal=causal).to(v.dtype)  # (B, H, L, d)
        x = self._residual(x, self.attn_out(attn.transpose(1, 2).reshape(B, L, D)), gate1)
        return self._residual(x, self.mlp(modulate(self.norm2(x), shift2, scale2)), gate2)


class DDitFinalLayer(nn.Module):
    def __init__(self, hidden_size, out_channels, cond_dim):
        super().__init__()
        self.norm_final = LayerNorm(hidden_size)
        self.linear = nn.Linear(hidden_size, out_channels)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * hidden_size)
        for layer in (self.linear, self.adaLN_modulation):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x, c):  # x: (..., D), c: (..., cond) broadcastable to x's leading dims
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DDiT(nn.Module):
    """Score network. `vocab_size` counts the mask symbol for the absorbing graph."""

    selects_rows = True  # forward(x, sigma, rows) returns only the selected rows (see samplers.Scorer)

    def __init__(self, vocab_size, hidden_size, cond_dim, n_blocks, n_heads, dropout=0.1, scale_by_sigma=True,
                 time_conditioning=True, causal=False):
        super().__init__()
        if causal and (scale_by_sigma or time_conditioning):
            raise ValueError("a causal DDiT (the AR baseline) has no noise level: scale_by_sigma and "
                             "time_conditioning must be off")
        self.scale_by_sigma, self.cond_dim, self.causal = scale_by_sigma, cond_dim, causal
        self.vocab_embed = EmbeddingLayer(hidden_size, vocab_size)
        self.sigma_map = TimestepEmbedder(cond_dim) if time_conditioning else None
        self.rotary_emb = Rotary(hidden_size // n_heads)
        self.blocks = nn.ModuleList(DDiTBlock(hidden_size, n_heads, cond_dim, dropout=dropout) for _ in range(n_blocks))
        self.output_layer = DDitFinalLayer(hidden_size, vocab_size, cond_dim)

    @property
    def time_independent(self) -> bool:
        """True when the log-score is a sigma-free output minus log(e^sigma - 1) (see the module docstring)."""
        return self.sigma_map is None and self.scale_by_sigma

    def hidden(self, indices, sigma=None):
        """The last block's output (B, L, D) and the condition (B, cond)."""
        x = self.vocab_embed(indices)  # (B, L, D)
        if self.sigma_map is None:
            c = x.new_zeros(len(indices), self.cond_dim)
        else:
            c = F.silu(self.sigma_map(sigma))  # (B, cond)
        cos_sin = self.rotary_emb(indices.shape[1], indices.device)
        for block in self.blocks:
            x = block(x, cos_sin, c, causal=self.causal)
        return x, c

    def forward(self, indices, sigma=None, rows=None):
        """indices (B, L) long, sigma (B,) -> log-scores (B, L, V); with `rows` (B, L) bool, (N, V) at those
        slots. A causal DDiT returns next-token logits (B, L, V) instead (no sigma)."""
        x, c = self.hidden(indices, sigma)
        if self.causal:
            return self.output_layer(x, c[:, None]).float()
        if rows is None:
            c, sigma = c[:, None], sigma[:, None]  # broadcast over L
        else:  # the head only where asked: (N, D) rows with their own condition and sigma
            batch_of = rows.nonzero()[:, 0]  # (N,)
            x, c, sigma, indices = x[rows], c[batch_of], sigma[batch_of], indices[rows]
        x = self.output_layer(x, c)  # (B, L, V) or (N, V)
        x = x.float()  # a copy only under autocast (precision.py); the in-place edits below touch no one else's tensor
        if self.scale_by_sigma:  # absorbing graph: the score of a masked slot scales as 1/(e^sigma - 1)
            x.sub_((torch.expm1(sigma.float()).log() + math.log(x.shape[-1] - 1))[..., None])
        return x.scatter_(-1, indices[..., None], 0.0)
