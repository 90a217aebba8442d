"""Sampling controls: what shapes a token draw, for the absorbing graph.

The defaults are exact: the samplers then draw from the model. `temperature`, `top_k`, `top_p` act on
a slot's token distribution (its score row without the mask, normalised) at the moment it is drawn;
when a slot leaves the mask stays the model's. temperature 0 takes the most probable token. None of
them is the exact conditional of the model's joint distribution. A sampler's own options (the
confidence sampler's measure and schedule, tau-leaping's remasking) belong to that sampler
(samplers/); the tokens a slot may take (anchors) to what a run holds (samplers.Fixed).
"""
import math
from dataclasses import dataclass
import torch

from .checks import whole
from .draw import categorical


@dataclass(frozen=True)
class Controls:
    temperature: float = 1.0
    top_k: int = 0  # 0: every token
    top_p: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.temperature, (int, float)) and 0 <= self.temperature < math.inf):
            raise ValueError(f"temperature must be a number from 0 up, got {self.temperature!r}")
        object.__setattr__(self, "top_k", whole("top-k", self.top_k, 0, 10**6))
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p!r}")

    @property
    def shapes_tokens(self) -> bool:
        """Whether a token draw differs from the model's distribution."""
        return self.temperature != 1 or self.top_k > 0 or self.top_p < 1

    def draw(self, w: torch.Tensor, generator, sums=None) -> torch.Tensor:
        """One token per row of exp-scores w (N, tokens) (no mask column); `sums`: w's block sums."""
        if not self.shapes_tokens:
            return categorical(w, generator, sums)
        return categorical(self.shape(w), generator)

    def shape(self, w: torch.Tensor) -> torch.Tensor:
        """The shaped, unnormalised token weights (N, tokens), float64 (a new tensor)."""
        p = w.double()
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
