"""The samplers, one algorithm per file; the registry every other layer reads; a run's settings; and
the entry point `sample_iter`.

`SAMPLERS` maps a name to its `Sampler` (base.py): how it runs and its facts (exact, absorbing only,
takes steps, network calls, its own options with their check, one line of help). The pipeline, the
editor, the CLI, the GPU-time estimate and `evaluate quality` keep no list of their own: adding a
sampler is its file and one entry here. The order is the editor's: the default first.

`Settings` (sampler, steps, controls, the sampler's options) checks each of them once, when it is
made; `sample_iter` checks what depends on the graph and the canvas when it is called, and returns the
sampler's generator, which yields a `SampleState` at the start and after every network call.
`score_fn(x, sigma) -> log-scores (B, L, dim)` may be the network or any exact oracle (see `Scorer`
for the two optional attributes that make the network cheaper to call). A run can start from an
intermediate state (`Start`): for the absorbing graph that state is a valid point of the reverse
process, so continuing from it is exact (a branch of an earlier run).
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Mapping, Optional, Tuple

import torch

from .. import checks
from ..controls import Controls
from .base import Context, Fixed, Sampler, SampleState, Scorer, Start
from .confidence import CONFIDENCE
from .first_hitting import FIRST_HITTING
from .tau_leaping import ANALYTIC, EULER

SAMPLERS: Dict[str, Sampler] = {s.name: s for s in (FIRST_HITTING, ANALYTIC, EULER, CONFIDENCE)}


def available(absorbing: bool) -> tuple:
    """The names of the samplers a graph supports, the default first."""
    return tuple(name for name, s in SAMPLERS.items() if absorbing or not s.absorbing_only)


def get(name: str, absorbing: bool = True) -> Sampler:
    """The registry entry of `name`; ValueError naming the choices when there is none (for the graph)."""
    names = available(absorbing)
    if name not in names:
        raise ValueError(f"unknown sampler {name!r}: choose one of {', '.join(names)}")
    return SAMPLERS[name]


def options() -> dict:
    """Every option of the registry's samplers, with its default (the first sampler's that has it)."""
    out = {}
    for sampler in SAMPLERS.values():
        for name, default in sampler.options.items():
            out.setdefault(name, default)
    return out


@dataclass(frozen=True)
class Settings:
    """How a run samples, checked once, here, against the library's limits (checks.py): the values
    that passed are the ones the run uses and an editor stores, shows and exports. `options` are the
    sampler's own (its registry entry), filled in with their defaults."""

    predictor: str = "analytic"
    steps: int = checks.DEFAULT_STEPS  # network calls of the samplers that take steps
    controls: Controls = Controls()
    options: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        sampler = get(self.predictor)
        object.__setattr__(self, "steps", checks.whole("steps", self.steps, *checks.STEPS))
        if not isinstance(self.controls, Controls):
            raise ValueError(f"controls must be a sedd_core.Controls, got {type(self.controls).__name__}")
        for name in self.options:
            if name not in sampler.options:
                which = [n for n, s in SAMPLERS.items() if name in s.options]
                raise ValueError(f"{name} does not apply to the {self.predictor} sampler: " + (
                    f"it is an option of {', '.join(which)}" if which else
                    f"its options are {', '.join(sampler.options) or 'none'}"))
        object.__setattr__(self, "options", sampler.settle(dict(self.options)))

    @property
    def sampler(self) -> Sampler:
        return SAMPLERS[self.predictor]

    @property
    def exact(self) -> bool:
        """Whether the run draws from the model (given its scores): an exact sampler with the default
        controls and its default options, `eps` aside (remasking and per_call > 1 are not exact)."""
        return (self.sampler.exact and not self.controls.shapes_tokens
                and all(self.options[k] == v for k, v in self.sampler.options.items() if k != "eps"))


def sample_iter(score_fn: Callable, graph, noise, shape: Tuple[int, int], settings: Settings = Settings(),
                fixed: Optional[Fixed] = None, start: Optional[Start] = None,
                generator: Optional[torch.Generator] = None) -> Iterator[SampleState]:
    """The states of one run of `shape` (B, L) with `settings`, on the device of `generator` (default:
    the CPU). `fixed` holds token ids at some slots and restricts others; `start` continues from an
    intermediate state. Every argument is checked here, before the first state is asked for."""
    sampler = settings.sampler
    if sampler.absorbing_only and not graph.absorb:
        raise ValueError(f"the {settings.predictor} sampler needs the absorbing graph")
    B, L = shape
    if not (isinstance(B, int) and isinstance(L, int) and B > 0 and L > 0):
        raise ValueError(f"the shape must be two positive whole numbers (batch, length), got {shape!r}")
    device = generator.device if generator is not None else torch.device("cpu")
    fixed = fixed or Fixed(torch.zeros(B, L, dtype=torch.long), torch.zeros(B, L, dtype=torch.bool))
    if not graph.absorb and (settings.controls.shapes_tokens or fixed.allowed):
        raise ValueError("the sampling controls and anchors need the absorbing graph")
    free, ids = ~fixed.mask.to(device), fixed.ids.to(device).long()
    if free.shape != (B, L) or ids.shape != (B, L):
        raise ValueError(f"the fixed ids and mask must have the shape {(B, L)}")
    bad = (~free & ((ids < 0) | (ids >= graph.tokens))).nonzero()
    if len(bad):
        raise ValueError(f"slot {int(bad[0, 1]) + 1} is fixed but holds no valid token id (got {int(ids[tuple(bad[0])])}):"
                         " free it or delete it")
    for slot, tokens in (fixed.allowed or {}).items():
        if not (isinstance(tokens, torch.Tensor) and tokens.shape == (graph.tokens,) and tokens.dtype == torch.bool
                and tokens.any()):
            raise ValueError(f"the tokens slot {slot!r} may take must be a ({graph.tokens},) bool tensor with at least one true")
    start = start or Start()
    if not isinstance(start.t, (int, float)) or not 0 < start.t <= 1:
        raise ValueError(f"the start time must lie in (0, 1], got {start.t!r}")
    if start.tokens is None:
        init = graph.sample_limit(B, L, device=device, generator=generator)
    else:
        init = torch.as_tensor(start.tokens).to(device).long()
        if init.shape != (B, L) or (free.any() and (init[free].min() < 0 or init[free].max() >= graph.dim)):
            raise ValueError(f"the start must be ({B}, {L}) token ids in [0, {graph.dim})")
    x = torch.where(free, init, ids)
    allowed = {slot: tokens.to(device) for slot, tokens in (fixed.allowed or {}).items()}
    ctx = Context(Scorer(score_fn), graph, noise, free, allowed, settings.controls, generator)
    return torch.no_grad()(sampler.run)(ctx, x, float(start.t), settings.steps, **settings.options)


def final(states: Iterator[SampleState]) -> SampleState:
    """The last state of a stream (`sample_iter`, `SEDDPipeline.stream`), draining it."""
    state = None
    for state in states:
        pass
    return state


def sample(*args, **kwargs) -> torch.Tensor:
    """Drain `sample_iter` and return the final tokens (B, L)."""
    return final(sample_iter(*args, **kwargs)).tokens


__all__ = ["SAMPLERS", "Context", "Fixed", "Sampler", "SampleState", "Scorer", "Settings", "Start", "available",
           "final", "get", "options", "sample", "sample_iter"]
