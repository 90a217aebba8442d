"""The autoregressive baseline: the DDiT itself with causal attention (`DDiT(causal=True)`), trained by next-token
cross-entropy on the same data, so SEDD's ELBO bound can be set beside an exact AR perplexity.

Every sequence is read after a BOS token (the EOS id), as in training: position i is predicted from
BOS and tokens 0..i-1. Its exported folder (`ar_folder.py`) makes it a judge of generated text.
"""
import math

import torch
import torch.nn.functional as F

from sedd_core.model import DDiT


def build_ar(cfg) -> DDiT:
    """A fresh causal DDiT (next-token logits, no noise level) for any config with `tokens` and `model`
    (a SEDDConfig, or an ARConfig): the same blocks and state-dict names as the SEDD network."""
    m = cfg.model
    return DDiT(cfg.tokens, m.hidden_size, m.cond_dim, m.n_blocks, m.n_heads, m.dropout, scale_by_sigma=False,
                time_conditioning=False, causal=True)


def after_bos(x0, bos_id: int) -> torch.Tensor:
    """The model's input for x0 (B, L): BOS, then x0 without its last token."""
    return torch.cat([torch.full_like(x0[:, :1], bos_id), x0[:, :-1]], dim=1)


def token_nll(logits, x0) -> torch.Tensor:
    """Cross-entropy in float32 per position (B, L) of logits (B, L, V) against the tokens x0 (B, L).

    On (B*L, V) rows: taking it over the class dimension of `logits.transpose(1, 2)` gives the same
    values at about twice the time on CPU. Pure and of fixed shapes, so the trainer can compile it."""
    return F.cross_entropy(logits.flatten(0, 1).float(), x0.flatten(), reduction="none").view_as(x0)


def ar_nll(model, x0, bos_id: int, nll=token_nll) -> torch.Tensor:
    """Negative log-likelihood per position (B, L) of every token of x0, the first one after a BOS (EOS) token;
    `nll` is `token_nll` or a compiled copy of it."""
    return nll(model(after_bos(x0, bos_id)), x0)


def ar_loss(model, x0, bos_id: int, nll=token_nll) -> torch.Tensor:
    """Per-sequence loss (B,): summed NLL, on the same scale as the SEDD loss."""
    return ar_nll(model, x0, bos_id, nll).sum(dim=-1)


@torch.no_grad()
def ar_perplexity(model, x0, bos_id: int) -> float:
    return math.exp(ar_nll(model, x0, bos_id).double().mean().item())


@torch.no_grad()
def ar_sample(model, batch: int, length: int, bos_id: int, generator=None, device="cpu") -> torch.Tensor:
    """Ancestral samples (batch, length) after BOS; each token drawn by inverse CDF in float64."""
    x = torch.full((batch, 1), bos_id, dtype=torch.long, device=device)
    for _ in range(length):
        p = model(x)[:, -1].double().softmax(-1)  # (B, V)
        cdf = p.cumsum(-1)
        u = torch.rand(batch, 1, generator=generator, dtype=torch.float64, device=device) * cdf[:, -1:]
        x = torch.cat([x, torch.searchsorted(cdf, u, right=True).clamp_max_(p.shape[1] - 1)], dim=1)
    return x[:, 1:]
