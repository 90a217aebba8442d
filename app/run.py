"""One sampling run, recorded while it streams: frames for the canvas and the scrubber, counts for the plots.

`record` consumes `SEDDPipeline.stream` directly and yields the growing `Run` after each kept frame:
every state when there are few, every k-th state (and always the last) when there are many. Everything
it records comes from the sampler's states: the slots still open, each row's time, the network calls.
"""
import math
from dataclasses import dataclass, field
from typing import Iterator, List

import numpy as np
import torch

MAX_FRAMES = 64  # frames streamed to the page and kept for the scrubber, at most (plus the last)


@dataclass
class Frame:
    step: int
    tokens: np.ndarray  # (B, L) int64: the sampler's state; ids past the vocabulary are masks
    decided: np.ndarray  # (B, L) int64: step at which each slot last changed, -1 if it never did
    calls: int  # network calls up to this state


@dataclass
class Run:
    start: List[dict]  # the canvas the run started from (its fixed slots stay put)
    predictor: str
    last: int  # the step of the final state
    masked: bool  # absorbing graph: undecided slots are masks (else every free slot is always open)
    frames: List[Frame] = field(default_factory=list)
    counts: List[List[int]] = field(default_factory=list)  # per state (B,): masked slots, or changes (uniform)
    times: List[List[float]] = field(default_factory=list)  # per state (B,): each row's diffusion time


def record(pipe, start, ids, fixed, steps: int, predictor: str, seed: int, batch: int) -> Iterator[Run]:
    """Stream a run of `batch` candidates for the canvas (`ids`, `fixed`: (L,)); ValueError on bad input."""
    run, decided, every = None, None, 1
    for state in pipe.stream(ids, fixed, steps=steps, predictor=predictor, seed=seed, batch=batch):
        if run is None:
            masked = bool((state.tokens[state.open] >= pipe.config.tokens).any())
            run, every = Run(start, predictor, state.last, masked), math.ceil((state.last + 1) / MAX_FRAMES)
            decided = torch.full_like(state.tokens, -1)  # (B, L)
        decided[state.changed] = state.step
        run.counts.append((state.open if run.masked else state.changed).sum(1).tolist())
        run.times.append(state.t.tolist())
        if state.step % every == 0 or state.done:
            run.frames.append(Frame(state.step, state.tokens.cpu().numpy(), decided.cpu().numpy().copy(), state.calls))
            yield run
