"""The sampling entry point: `sample_iter` checks its arguments when it is called and returns the
chosen sampler's generator, which yields a `SampleState` at the start and after every network call;
`sample` drains it; `final` drains any stream to its last state.

`score_fn(x, sigma) -> log-scores (B, L, dim)` may be the network or any exact oracle (see
`samplers.Scorer` for the two optional attributes that make the network cheaper to call). The
samplers themselves, one per file, and the facts about each are in `samplers/` (the registry).
`controls` (temperature, top-k/p, allowed tokens per slot, remasking) change what is drawn; the
defaults are exact. A run can start from an intermediate state: `init` (B, L) tokens of the free
slots (masks where undecided) at time `t_start`; for the absorbing graph that state is a valid point
of the reverse process, so continuing from it is exact (a branch of an earlier run).
"""
from typing import Callable, Iterator, Optional

import torch

from .checks import DEFAULT_STEPS
from .controls import Controls
from .graph import Graph
from .noise import Noise
from .samplers import SAMPLERS, Context, SampleState, Scorer, get


def sample_iter(
    score_fn: Callable,
    graph: Graph,
    noise: Noise,
    batch: int,
    length: int,
    steps: int = DEFAULT_STEPS,
    predictor: str = "analytic",
    fixed_ids: Optional[torch.Tensor] = None,
    fixed_mask: Optional[torch.Tensor] = None,
    controls: Controls = Controls(),
    init: Optional[torch.Tensor] = None,
    t_start: float = 1.0,
    generator: Optional[torch.Generator] = None,
    device="cpu",
    cache: bool = True,
    **options,
) -> Iterator[SampleState]:
    """The states of one run of sampler `predictor` (samplers.SAMPLERS). Slots where `fixed_mask`
    (B, L) is set hold `fixed_ids` (B, L); `steps` counts the calls of the samplers that take steps;
    `options` are the sampler's own (e.g. first_hitting's per_call); `cache`: reuse the output of a
    time-independent model (see `Scorer`); `init`, `t_start`: start from that state. Every argument
    is checked here, before the first state is asked for."""
    sampler = get(predictor)
    if sampler.absorbing_only and not graph.absorb:
        raise ValueError(f"the {predictor} sampler needs the absorbing graph")
    if not graph.absorb and controls != Controls():
        raise ValueError("the sampling controls need the absorbing graph")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if controls.remask and "remask" not in sampler.controls:
        which = ", ".join(n for n, s in SAMPLERS.items() if "remask" in s.controls)
        raise ValueError(f"remasking does not apply to the {predictor} sampler: choose one of {which}")
    unknown = sorted(set(options) - set(sampler.options))
    if unknown:
        raise ValueError(f"the {predictor} sampler has no option {unknown[0]!r} (its options: "
                         f"{', '.join(sampler.options) or 'none'})")
    if options.get("per_call", 1) < 1:
        raise ValueError(f"per_call must be at least 1, got {options['per_call']}")
    if not 0 < options.get("eps", 1e-5) < 1:
        raise ValueError(f"eps must lie in (0, 1), got {options['eps']}")
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
    ctx = Context(Scorer(score_fn, cache), graph, noise, free, controls, generator)
    return torch.no_grad()(sampler.run)(ctx, x, t_start, steps, **options)


def final(states: Iterator[SampleState]) -> SampleState:
    """The last state of a stream (`sample_iter`, `SEDDPipeline.stream`), draining it."""
    state = None
    for state in states:
        pass
    return state


def sample(*args, **kwargs) -> torch.Tensor:
    """Drain `sample_iter` and return the final tokens (B, L)."""
    return final(sample_iter(*args, **kwargs)).tokens
