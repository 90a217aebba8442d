"""The autoregressive baseline: the same transformer blocks as DDiT, causal, trained by next-token
cross-entropy on the same data, so SEDD's ELBO bound can be set beside an exact AR perplexity."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from sedd_core.model import DDiTBlock, DDitFinalLayer, EmbeddingLayer, Rotary


class CausalLM(nn.Module):
    """DDiT blocks with causal attention and a constant (zero) conditioning vector; logits (B, L, V)."""

    def __init__(self, vocab_size, hidden_size, cond_dim, n_blocks, n_heads, dropout=0.1):
        super().__init__()
        self.cond_dim = cond_dim
        self.vocab_embed = EmbeddingLayer(hidden_size, vocab_size)
        self.rotary_emb = Rotary(hidden_size // n_heads)
        self.blocks = nn.ModuleList(DDiTBlock(hidden_size, n_heads, cond_dim, dropout=dropout) for _ in range(n_blocks))
        self.output_layer = DDitFinalLayer(hidden_size, vocab_size, cond_dim)

    def forward(self, x):  # (B, L) -> next-token logits (B, L, V)
        h = self.vocab_embed(x)
        c = torch.zeros(x.shape[0], self.cond_dim, device=x.device)
        cos_sin = self.rotary_emb(x.shape[1], x.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda):
            for block in self.blocks:
                h = block(h, cos_sin, c, causal=True)
            return self.output_layer(h, c[:, None]).float()


def build_ar(sedd_cfg) -> CausalLM:
    m = sedd_cfg.model
    return CausalLM(sedd_cfg.tokens, m.hidden_size, m.cond_dim, m.n_blocks, m.n_heads, m.dropout)


def ar_nll(model, x0, bos_id: int) -> torch.Tensor:
    """Negative log-likelihood per position (B, L) of every token of x0, the first one after a BOS (EOS) token."""
    inputs = torch.cat([torch.full_like(x0[:, :1], bos_id), x0[:, :-1]], dim=1)
    logits = model(inputs)
    return F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")


def ar_loss(model, x0, bos_id: int) -> torch.Tensor:
    """Per-sequence loss (B,): summed NLL, on the same scale as the SEDD loss."""
    return ar_nll(model, x0, bos_id).sum(dim=-1)


@torch.no_grad()
def ar_perplexity(model, x0, bos_id: int) -> float:
    return math.exp(ar_nll(model, x0, bos_id).double().mean().item())
