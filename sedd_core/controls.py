"""Sampling controls that trade faithfulness for quality or steer the text, for the absorbing graph.

The defaults are exact: the samplers then draw from the model. Each control below changes the
sampled distribution and none of them is the exact conditional of the model's joint distribution:
- `temperature`, `top_k`, `top_p`: act on a slot's token distribution (its score row without the
  mask, normalised) at the moment it is drawn; when a slot leaves the mask stays the model's.
  temperature 0 takes the most probable token.
- `allowed` (slot -> (tokens,) bool): the only tokens a slot may take (character anchors). Scores of
  other tokens are zeroed before the draw, which conditions each draw, not the joint.
- `confidence`, `schedule`: the "confidence" predictor (LLaDA / MaskGIT style) decides, at each of
  `steps` calls, the k open slots whose distribution is most confident ("max": the best token's
  probability, "entropy": the lowest entropy, "margin": the gap between the two best), with k from a
  "linear" or "cosine" schedule of the decided count.
- `remask` (analytic and Euler, ReMDM style): while `remask_from >= t > remask_until`, each decided
  free slot is masked again with this probability per step, so early choices can be revised; fixed
  slots never are, and the run still ends with no mask.
"""
import math
from dataclasses import dataclass
from typing import Mapping, Optional

import torch

from .draw import categorical

CONFIDENCE = ("max", "entropy", "margin")
SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class Controls:
    temperature: float = 1.0
    top_k: int = 0  # 0: every token
    top_p: float = 1.0
    allowed: Optional[Mapping[int, torch.Tensor]] = None  # slot -> (tokens,) bool
    confidence: str = "max"
    schedule: str = "linear"
    remask: float = 0.0
    remask_from: float = 0.5
    remask_until: float = 0.1

    def __post_init__(self):
        if not (isinstance(self.temperature, (int, float)) and 0 <= self.temperature < math.inf):
            raise ValueError(f"temperature must be a number from 0 up, got {self.temperature!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be a whole number from 0 (off) up, got {self.top_k!r}")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p!r}")
        if self.confidence not in CONFIDENCE:
            raise ValueError(f"confidence must be one of {', '.join(CONFIDENCE)}, got {self.confidence!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not (isinstance(self.remask, (int, float)) and 0 <= self.remask < 1):
            raise ValueError(f"remask must lie in [0, 1), got {self.remask!r}")
        for slot, tokens in (self.allowed or {}).items():
            if not (isinstance(tokens, torch.Tensor) and tokens.dtype == torch.bool and tokens.dim() == 1
                    and tokens.any()):
                raise ValueError(f"allowed[{slot!r}] must be a (tokens,) bool tensor with at least one token allowed")
        if not 0 <= self.remask_until < self.remask_from <= 1:
            raise ValueError("remasking needs 0 <= remask_until < remask_from <= 1, got "
                             f"{self.remask_until} and {self.remask_from}")

    @property
    def shapes_tokens(self) -> bool:
        """Whether a token draw differs from the model's distribution."""
        return self.temperature != 1 or self.top_k > 0 or self.top_p < 1 or bool(self.allowed)

    def allowed_rows(self, positions: torch.Tensor, tokens: int) -> Optional[torch.Tensor]:
        """(N, tokens) bool of the tokens each row may take, from the slots' positions (N,); None: all."""
        if not self.allowed:
            return None
        out = torch.ones(len(positions), tokens, dtype=torch.bool, device=positions.device)
        for n, p in enumerate(positions.tolist()):
            if p in self.allowed:
                out[n] = self.allowed[p].to(out.device)
        return out

    def draw(self, w: torch.Tensor, positions: torch.Tensor, generator, sums=None) -> torch.Tensor:
        """One token per row of exp-scores w (N, tokens) (no mask column) for slots at `positions` (N,)."""
        if not self.shapes_tokens:
            return categorical(w, generator, sums)
        return categorical(self.shape(w, positions), generator)

    def shape(self, w: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The shaped, unnormalised token weights (N, tokens), float64 (a new tensor)."""
        p = w.double()
        allowed = self.allowed_rows(positions, w.shape[1])
        if allowed is not None:
            p = p * allowed
        p = p / p.amax(1, keepdim=True).clamp_min(1e-300)  # best token 1: powers neither overflow nor vanish
        if self.temperature == 0:
            return (p == 1).double()  # the argmax (all of them on an exact tie)
        if self.temperature != 1:
            p = p ** (1 / self.temperature)
        if 0 < self.top_k < p.shape[1]:
            kth = p.topk(self.top_k, 1).values[:, -1:]
            p = p * (p >= kth)
        if self.top_p < 1:
            values, order = p.sort(1, descending=True)
            before = (values.cumsum(1) - values) / values.sum(1, keepdim=True)  # mass of the better tokens
            keep = before < self.top_p * (1 - 1e-9)  # a set whose mass reaches p up to rounding is enough
            p = p * torch.zeros_like(p).scatter_(1, order, keep.double())
        return p


def confidence(w: torch.Tensor, kind: str) -> torch.Tensor:
    """How sure each row's token distribution is (N,), higher is surer; w (N, tokens) exp-scores."""
    p = w.double() / w.double().sum(1, keepdim=True)
    if kind == "max":
        return p.amax(1)
    if kind == "entropy":
        return (p * p.clamp_min(1e-300).log()).sum(1)  # minus the entropy
    best = p.topk(min(2, p.shape[1]), 1).values
    return best[:, 0] - (best[:, 1] if best.shape[1] > 1 else 0)


def decided_by(n: int, calls: int, total: torch.Tensor, schedule: str) -> torch.Tensor:
    """How many of `total` (B,) open slots the confidence predictor has decided after call n of `calls`."""
    frac = n / calls if schedule == "linear" else 1 - math.cos(math.pi / 2 * n / calls)
    return torch.ceil(total * frac - 1e-9).long().clamp(max=total) if n < calls else total
