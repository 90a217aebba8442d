"""Reverse-diffusion samplers that stream every intermediate state.

`sample_iter` is a generator that yields a `SampleState` at the start and after every network call;
`sample` drains it. `score_fn(x, sigma) -> log-scores (B, L, dim)` may be the network or any exact
oracle (see `Scorer` for the two optional attributes that make the network cheaper to call).

Predictors:
- "analytic" / "euler": tau-leaping on the time grid linspace(1, eps, steps + 1), then a final
  denoising step (`predictors.py`): steps + 1 states after the start.
- "first_hitting" (absorbing graph): the reverse process simulated exactly, one decided slot per
  call and row. Given k masked free slots at time t, each one is still masked at s < t with
  probability rho(s) / rho(t), rho = 1 - exp(-sigma), independently; so the next unmasking happens
  at rho(s) = rho(t) u^(1/k) (for log-linear noise, s = t u^(1/k)), at a slot chosen uniformly among
  the k, and its token is drawn from the model's conditional at s (the score row without the mask,
  normalised). One call per free slot, no step count and no discretisation error; each batch row
  keeps its own clock. `per_call = n > 1` decides n slots per call from one network output (the
  first event's); faster, and approximate: the later tokens of a call do not see the earlier ones.
"""
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch

from .draw import categorical
from .graph import Graph
from .noise import Noise
from .predictors import STEPS, denoise

PREDICTORS = (*STEPS, "first_hitting")


@dataclass
class SampleState:
    step: int  # network calls' states so far: 0 = the start, `last` = the final state
    last: int  # the step of the final state
    t: torch.Tensor  # (B,) float64: each row's diffusion time (first_hitting: of its latest event)
    tokens: torch.Tensor  # (B, L) long; the mask id (graph.mask) marks undecided slots
    changed: torch.Tensor  # (B, L) bool: slots decided (absorbing) or changed (uniform) in this step
    open: torch.Tensor  # (B, L) bool: free slots that can still change later in this run
    calls: int  # network calls so far (a call scores the whole batch)

    @property
    def done(self) -> bool:
        return self.step == self.last


class Scorer:
    """Exp-scores w (N, V) float32 of the selected slots of a batch, from any `score_fn`; counts calls.

    When `score_fn.selects_rows` is true it is called as `score_fn(x, sigma, rows=rows)` and returns
    only those rows (N, V) (the DDiT runs its output head there only); otherwise the (B, L, V) output
    is indexed. Only batch rows with a selected slot go through the network. When
    `score_fn.time_independent` is true (absorbing graph, log-score = f(x) - log(e^sigma - 1)) and
    `cache` is set, a batch row whose tokens and selected slots did not change since its last call
    reuses that call's output with the factor (e^sigma_then - 1) / (e^sigma_now - 1): exact.
    Returns (w, scale) with scale (N,) float64, by which each row of w must be multiplied.
    """

    def __init__(self, score_fn: Callable, cache: bool = True):
        self.score_fn, self.calls = score_fn, 0
        self.selects = getattr(score_fn, "selects_rows", False)
        self.cache = {} if cache and getattr(score_fn, "time_independent", False) else None

    def _network(self, x, sigma, rows):  # (B', L), (B',) float64, (B', L) -> (N', V)
        self.calls += 1
        out = self.score_fn(x, sigma.float(), rows=rows) if self.selects else self.score_fn(x, sigma.float())[rows]
        return out.float().exp_()

    def __call__(self, x, sigma, rows):  # x (B, L), sigma (B,) float64, rows (B, L) bool
        asked = rows.any(1)  # (B,): only these batch rows go through the network
        if self.cache is None:
            w = self._network(x[asked], sigma[asked], rows[asked])
            return w, torch.ones(len(w), dtype=torch.float64, device=w.device)
        self.cache = {b: c for b, c in self.cache.items() if torch.equal(c[0], x[b]) and torch.equal(c[1], rows[b])}
        need = asked.clone()
        need[list(self.cache)] = False
        if need.any():
            fresh = self._network(x[need], sigma[need], rows[need]).split(rows[need].sum(1).tolist())
            for b, w_b in zip(need.nonzero()[:, 0].tolist(), fresh):
                self.cache[b] = (x[b], rows[b], sigma[b], w_b)
        ws, scales = [], []
        for b in asked.nonzero()[:, 0].tolist():
            _, _, then, w_b = self.cache[b]
            ws.append(w_b)
            scales.append((torch.expm1(then) / torch.expm1(sigma[b])).expand(len(w_b)))
        return (ws[0] if len(ws) == 1 else torch.cat(ws)), torch.cat(scales)


@torch.no_grad()
def sample_iter(
    score_fn: Callable,
    graph: Graph,
    noise: Noise,
    batch: int,
    length: int,
    steps: int = 128,
    predictor: str = "analytic",
    fixed_ids: Optional[torch.Tensor] = None,
    fixed_mask: Optional[torch.Tensor] = None,
    eps: float = 1e-5,
    per_call: int = 1,
    cache: bool = True,
    generator: Optional[torch.Generator] = None,
    device="cpu",
) -> Iterator[SampleState]:
    """Yield the state at the start and after every call. Slots where `fixed_mask` (B, L) is set hold
    `fixed_ids` (B, L). `steps`: tau-leaping only; `per_call`: first_hitting only; `cache`: reuse the
    output of a time-independent model (see `Scorer`)."""
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}: expected one of {PREDICTORS}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if predictor == "first_hitting" and not graph.absorb:
        raise ValueError("the first_hitting sampler needs the absorbing graph: use analytic or euler")
    if per_call < 1:
        raise ValueError(f"per_call must be at least 1, got {per_call}")
    free = torch.ones(batch, length, dtype=torch.bool, device=device) if fixed_mask is None else ~fixed_mask.to(device)
    if free.shape != (batch, length):
        raise ValueError(f"fixed_mask has shape {tuple(free.shape)}, expected {(batch, length)}")
    ids = torch.zeros_like(free, dtype=torch.long) if fixed_ids is None else fixed_ids.to(device).long()
    if (~free).any() and (ids[~free].min() < 0 or ids[~free].max() >= graph.tokens):
        raise ValueError(f"fixed token ids must lie in [0, {graph.tokens})")

    x = torch.where(free, graph.sample_limit(batch, length, device=device, generator=generator), ids)
    scorer = Scorer(score_fn, cache)
    if predictor == "first_hitting":
        yield from _first_hitting(scorer, graph, noise, x, free, eps, per_call, generator)
    else:
        yield from _tau_leaping(scorer, graph, noise, x, free, steps, STEPS[predictor], eps, generator)


def _open(graph, x, free):  # (B, L): the free slots a step may change
    return free & (x == graph.mask) if graph.absorb else free


def _tau_leaping(scorer, graph, noise, x, free, steps, step, eps, generator):
    """`steps` predictor steps on linspace(1, eps, steps + 1), then the final denoising step."""
    times = torch.linspace(1, eps, steps + 1, device=x.device, dtype=torch.float64).tolist() + [0.0]
    B = len(x)
    now = _open(graph, x, free)
    yield SampleState(0, steps + 1, torch.ones(B, dtype=torch.float64), x, torch.zeros_like(free), now, 0)
    for n in range(steps + 1):
        t, s = (torch.tensor(v, dtype=torch.float64, device=x.device) for v in times[n:n + 2])
        changed = torch.zeros_like(free)
        if now.any():
            w, scale = scorer(x, noise.total(t).expand(B), now)
            rows = x[now]  # (N,)
            new = (denoise if n == steps else step)(graph, rows, w, scale, noise, t, s, generator)
            changed[now] = new != rows
            x = x.masked_scatter(now, new)
        now = _open(graph, x, free) if n < steps else torch.zeros_like(free)
        yield SampleState(n + 1, steps + 1, s.expand(B).cpu(), x, changed, now, scorer.calls)


def _first_hitting(scorer, graph, noise, x, free, eps, per_call, generator):
    """Exact event-by-event simulation of the absorbing reverse process (see the module docstring)."""
    B, L = x.shape
    dev, f64 = x.device, torch.float64
    now = free & (x == graph.mask)
    left = now.sum(1)  # (B,) masked free slots per row
    per_call = min(per_call, L)
    last = int((left.max() + per_call - 1) // per_call)
    rho = -torch.expm1(-noise.total(torch.ones(B, dtype=f64, device=dev)))  # (B,) P(masked) at t = 1
    floor = noise.total(torch.tensor(eps, dtype=f64, device=dev))  # the network is never asked below sigma(eps)
    t = torch.ones(B, dtype=f64)
    yield SampleState(0, last, t, x, torch.zeros_like(free), now, 0)
    for n in range(last):
        events = left.clamp(max=per_call)  # (B,) slots decided in this call
        u = torch.rand(B, per_call, generator=generator, dtype=f64, device=dev)
        k = (left[:, None] - torch.arange(per_call, device=dev)).clamp(min=1)  # masked slots before each event
        fall = torch.where(torch.arange(per_call, device=dev) < events[:, None], u ** (1 / k), 1.0)
        rhos = rho[:, None] * fall.cumprod(1)  # (B, per_call): rho at each event
        sigma = torch.maximum(-torch.log1p(-rhos[:, 0]), floor)  # (B,) at the first event
        keys = torch.rand(B, L, generator=generator, dtype=f64, device=dev).masked_fill_(~now, -1)
        order = keys.argsort(1, descending=True)[:, :per_call]  # (B, per_call) a uniform choice of open slots
        pick = torch.zeros_like(now).scatter_(1, order, torch.arange(per_call, device=dev) < events[:, None])
        w, _ = scorer(x, sigma, pick)
        x = x.masked_scatter(pick, categorical(w[:, :graph.tokens], generator))
        active = events > 0
        rho = torch.where(active, rhos.gather(1, (events - 1).clamp(min=0)[:, None]).squeeze(1), rho)
        t = torch.where(active.cpu(), noise.inverse(-torch.log1p(-rho)).clamp(0, 1).cpu(), t)
        left, now = left - events, now & ~pick
        yield SampleState(n + 1, last, t, x, pick, now, scorer.calls)


def sample(*args, **kwargs) -> torch.Tensor:
    """Drain `sample_iter` and return the final tokens (B, L)."""
    state = None
    for state in sample_iter(*args, **kwargs):
        pass
    return state.tokens
