"""What every sampler shares: the state it yields, the scorer that calls the network, the context of
one run (graph, noise, free slots and the tokens they may take, controls, random stream), where a run
starts, and the facts a registry entry states.

A sampler is a generator function `run(ctx, x, t_start, steps, **options)` that yields a `SampleState`
at the start and after every network call; `Sampler` says, once, everything another layer needs to
know about it (see samplers/__init__.py for the registry).
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Mapping, NamedTuple, Optional

import torch


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


@dataclass(frozen=True)
class Sampler:
    """One sampler's facts, stated once."""

    name: str
    run: Callable[..., Iterator[SampleState]]  # run(ctx, x, t_start, steps, **options)
    help: str  # one line, for the page, the CLI and the docs
    exact: bool  # with the default controls it draws from the model (tau-leaping: up to its time grid)
    absorbing_only: bool  # needs the mask of the absorbing graph
    takes_steps: bool  # `steps` sets its number of network calls
    calls: Callable[[int, int], int]  # (steps, free slots) -> network calls, at most
    options: Dict[str, object] = field(default_factory=dict)  # its own keyword options and their defaults
    check: Callable[[dict], None] = lambda options: None  # ValueError naming a bad value of its options

    def settle(self, options: Mapping) -> dict:
        """Its options (names it has): `options` over the defaults, checked (ValueError naming the first
        bad value)."""
        settled = {**self.options, **options}
        self.check(settled)
        return settled


def number(options: dict, name: str, low: float, high: float, closed: bool = False):
    """Check that option `name` lies in (low, high), or in [low, high) when `closed`."""
    v = options[name]
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and (low <= v if closed else low < v) and v < high):
        raise ValueError(f"{name} must lie in {'[' if closed else '('}{low:g}, {high:g}), got {v!r}")


class Fixed(NamedTuple):
    """What a run holds: `ids` (B, L) where `mask` (B, L) is set; `allowed` {slot: (tokens,) bool}, the
    only tokens each listed free slot may take (anchors: this conditions each draw, not the joint)."""

    ids: torch.Tensor
    mask: torch.Tensor
    allowed: Optional[Mapping[int, torch.Tensor]] = None


class Start(NamedTuple):
    """Where a run starts: `tokens` (B, L) of the free slots (masks where undecided; None: the graph's
    limit distribution) at time `t`."""

    tokens: Optional[torch.Tensor] = None
    t: float = 1.0


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


class Context:
    """The context of one sampling run: the network, the graph, the noise, the free slots, the tokens
    they may take, the controls and the random stream; how a state is made and a token drawn."""

    def __init__(self, scorer, graph, noise, free, allowed, controls, generator):
        self.scorer, self.graph, self.noise, self.free = scorer, graph, noise, free
        self.allowed, self.controls, self.generator = allowed or {}, controls, generator

    def open(self, x):  # (B, L): the free slots a step may change
        return self.free & (x == self.graph.mask) if self.graph.absorb else self.free

    def state(self, step, last, t, x, changed, now):
        return SampleState(step, last, t.cpu(), x, changed, now, self.scorer.calls)

    def weights(self, w, positions):
        """Exp-scores w (N, tokens) of the slots at `positions` (N,), with the tokens a slot may not take
        zeroed (w itself when no slot is restricted)."""
        if not self.allowed:
            return w
        keep = torch.ones_like(w, dtype=torch.bool)
        for n, p in enumerate(positions.tolist()):
            if p in self.allowed:
                keep[n] = self.allowed[p]
        return w * keep

    def drawer(self, rows):  # draw(w, which, sums): tokens for the selected slots `rows` (B, L)
        positions = rows.nonzero()[:, 1]

        def draw(w, which, sums=None):
            if self.allowed:  # the block sums no longer add up
                w, sums = self.weights(w, positions[which]), None
            return self.controls.draw(w, self.generator, sums)
        return draw
