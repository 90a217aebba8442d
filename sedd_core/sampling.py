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
- "confidence" (absorbing graph, not exact): `steps` calls, each deciding the open slots the model
  is surest of (`controls.py`).
`controls` (temperature, top-k/p, allowed tokens per slot, remasking) change what is drawn; the
defaults are exact. A run can start from an intermediate state: `init` (B, L) tokens of the free
slots (masks where undecided) at time `t_start`; for the absorbing graph that state is a valid
point of the reverse process, so continuing from it is exact (a branch of an earlier run).
"""
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch

from .controls import Controls, confidence, decided_by
from .graph import Graph
from .noise import Noise
from .predictors import STEPS, denoise

PREDICTORS = (*STEPS, "first_hitting", "confidence")


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
    controls: Controls = Controls(),
    init: Optional[torch.Tensor] = None,
    t_start: float = 1.0,
    generator: Optional[torch.Generator] = None,
    device="cpu",
) -> Iterator[SampleState]:
    """Yield the state at the start and after every call. Slots where `fixed_mask` (B, L) is set hold
    `fixed_ids` (B, L). `steps`: tau-leaping and confidence; `per_call`: first_hitting only; `cache`:
    reuse the output of a time-independent model (see `Scorer`); `init`, `t_start`: start from that
    state (see the module docstring)."""
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}: expected one of {PREDICTORS}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not graph.absorb and (predictor in ("first_hitting", "confidence") or controls != Controls()):
        raise ValueError("first_hitting, confidence and the sampling controls need the absorbing graph")
    if controls.remask and predictor not in STEPS:
        raise ValueError("remasking works with the analytic and euler predictors")
    if per_call < 1:
        raise ValueError(f"per_call must be at least 1, got {per_call}")
    if not 0 < t_start <= 1:
        raise ValueError(f"t_start must lie in (0, 1], got {t_start}")
    free = torch.ones(batch, length, dtype=torch.bool, device=device) if fixed_mask is None else ~fixed_mask.to(device)
    if free.shape != (batch, length):
        raise ValueError(f"fixed_mask has shape {tuple(free.shape)}, expected {(batch, length)}")
    ids = torch.zeros_like(free, dtype=torch.long) if fixed_ids is None else fixed_ids.to(device).long()
    if (~free).any() and (ids[~free].min() < 0 or ids[~free].max() >= graph.tokens):
        raise ValueError(f"fixed token ids must lie in [0, {graph.tokens})")
    if init is None:
        init = graph.sample_limit(batch, length, device=device, generator=generator)
    elif init.shape != (batch, length) or init[free].min() < 0 or init[free].max() >= graph.dim:
        raise ValueError(f"init must be ({batch}, {length}) token ids in [0, {graph.dim})")

    x = torch.where(free, init.to(device).long(), ids)
    run = Run(Scorer(score_fn, cache), graph, noise, free, controls, generator)
    if predictor == "first_hitting":
        yield from run.first_hitting(x, t_start, eps, per_call)
    elif predictor == "confidence":
        yield from run.confidence(x, t_start, steps)
    else:
        yield from run.tau_leaping(x, t_start, steps, STEPS[predictor], eps)


class Run:
    """The loops of one sampling run: what they share (the network, the graph, the free slots, the
    controls, the random stream) and how a state is made."""

    def __init__(self, scorer, graph, noise, free, controls, generator):
        self.scorer, self.graph, self.noise, self.free = scorer, graph, noise, free
        self.controls, self.generator = controls, generator

    def open(self, x):  # (B, L): the free slots a step may change
        return self.free & (x == self.graph.mask) if self.graph.absorb else self.free

    def state(self, step, last, t, x, changed, now):
        return SampleState(step, last, t.cpu(), x, changed, now, self.scorer.calls)

    def drawer(self, rows):  # draw(w, which, sums): tokens for the selected slots `rows` (B, L)
        positions = rows.nonzero()[:, 1]
        return lambda w, which, sums=None: self.controls.draw(w, positions[which], self.generator, sums)

    def tau_leaping(self, x, t_start, steps, step, eps):
        """`steps` predictor steps on linspace(t_start, eps, steps + 1), then the final denoising step;
        with `controls.remask`, decided slots may be masked again inside the remasking window."""
        f64, B, c = torch.float64, len(x), self.controls
        times = torch.linspace(t_start, eps, steps + 1, dtype=f64).tolist() + [0.0]
        now = self.open(x)
        yield self.state(0, steps + 1, torch.full((B,), t_start, dtype=f64), x, torch.zeros_like(now), now)
        for n in range(steps + 1):
            t, s = (torch.tensor(v, dtype=f64, device=x.device) for v in times[n:n + 2])
            changed = torch.zeros_like(now)
            if now.any():
                w, scale = self.scorer(x, self.noise.total(t).expand(B), now)
                rows = x[now]  # (N,)
                new = (denoise if n == steps else step)(self.graph, rows, w, scale, self.noise, t, s,
                                                         self.drawer(now), self.generator)
                changed[now] = new != rows
                x = x.masked_scatter(now, new)
            if c.remask and n < steps and c.remask_from >= float(s) > c.remask_until:
                again = (self.free & (x != self.graph.mask)
                         & (torch.rand(x.shape, generator=self.generator, device=x.device) < c.remask))
                x, changed = x.masked_fill(again, self.graph.mask), changed | again
            now = self.open(x) if n < steps else torch.zeros_like(now)
            yield self.state(n + 1, steps + 1, s.expand(B), x, changed, now)

    def first_hitting(self, x, t_start, eps, per_call):
        """Exact event-by-event simulation of the absorbing reverse process (see the module docstring)."""
        B, L = x.shape
        dev, f64, noise = x.device, torch.float64, self.noise
        now = self.open(x)
        left = now.sum(1)  # (B,) masked free slots per row
        per_call = min(per_call, L)
        last = int((left.max() + per_call - 1) // per_call)
        t = torch.full((B,), t_start, dtype=f64, device=dev)
        rho = -torch.expm1(-noise.total(t))  # (B,) P(masked) at t
        floor = noise.total(torch.tensor(eps, dtype=f64, device=dev))  # the network is never asked below sigma(eps)
        yield self.state(0, last, t, x, torch.zeros_like(now), now)
        for n in range(last):
            events = left.clamp(max=per_call)  # (B,) slots decided in this call
            u = torch.rand(B, per_call, generator=self.generator, dtype=f64, device=dev)
            k = (left[:, None] - torch.arange(per_call, device=dev)).clamp(min=1)  # masked slots before each event
            fall = torch.where(torch.arange(per_call, device=dev) < events[:, None], u ** (1 / k), 1.0)
            rhos = rho[:, None] * fall.cumprod(1)  # (B, per_call): rho at each event
            sigma = torch.maximum(-torch.log1p(-rhos[:, 0]), floor)  # (B,) at the first event
            keys = torch.rand(B, L, generator=self.generator, dtype=f64, device=dev).masked_fill_(~now, -1)
            order = keys.argsort(1, descending=True)[:, :per_call]  # (B, per_call) a uniform choice of open slots
            pick = torch.zeros_like(now).scatter_(1, order, torch.arange(per_call, device=dev) < events[:, None])
            w, _ = self.scorer(x, sigma, pick)
            x = x.masked_scatter(pick, self.drawer(pick)(w[:, :self.graph.tokens], slice(None)))
            active = events > 0
            rho = torch.where(active, rhos.gather(1, (events - 1).clamp(min=0)[:, None]).squeeze(1), rho)
            t = torch.where(active, noise.inverse(-torch.log1p(-rho)).clamp(0, 1), t)
            left, now = left - events, now & ~pick
            yield self.state(n + 1, last, t, x, pick, now)

    def confidence(self, x, t_start, steps):
        """`steps` calls; call n decides the open slots the model is surest of, so that
        `decided_by(n)` of them are decided after it (see controls.py). Not exact."""
        B, f64, c = len(x), torch.float64, self.controls
        now = self.open(x)
        total = now.sum(1)  # (B,)
        t = torch.full((B,), t_start, dtype=f64, device=x.device)
        yield self.state(0, steps, t, x, torch.zeros_like(now), now)
        for n in range(1, steps + 1):
            want = decided_by(n, steps, total, c.schedule) - (total - now.sum(1))  # (B,) to decide now
            pick = torch.zeros_like(now)
            if want.any():
                t = t_start * (1 - (total - now.sum(1)) / total.clamp(min=1))  # the masked fraction, as a time
                w, _ = self.scorer(x, self.noise.total(t), now)
                w = w[:, :self.graph.tokens]
                sure = torch.full(now.shape, -torch.inf, dtype=f64, device=x.device)
                sure[now] = confidence(self.controls.shape(w, now.nonzero()[:, 1]) if c.shapes_tokens else w,
                                       c.confidence)
                ranks = sure.argsort(1, descending=True).argsort(1)  # (B, L): 0 = the surest open slot
                pick = now & (ranks < want[:, None])
                x = x.masked_scatter(pick, self.drawer(now)(w[pick[now]], pick[now]))
                now = now & ~pick
            t = t_start * (now.sum(1) / total.clamp(min=1)).double()
            yield self.state(n, steps, t, x, pick, now)


def final(states: Iterator[SampleState]) -> SampleState:
    """The last state of a stream (`sample_iter`, `SEDDPipeline.stream`), draining it."""
    state = None
    for state in states:
        pass
    return state


def sample(*args, **kwargs) -> torch.Tensor:
    """Drain `sample_iter` and return the final tokens (B, L)."""
    return final(sample_iter(*args, **kwargs)).tokens
