"""One sampling run, recorded while it streams: frames for the canvas and the scrubber, counts for the plots.

`record` consumes `SEDDPipeline.stream` directly and yields the growing `Run` after each kept frame:
every step when there are few, every k-th step (and always the last) when there are many.
"""
import math
from dataclasses import dataclass, field
from typing import Iterator, List, Optional

import numpy as np
import torch

MAX_FRAMES = 64  # frames streamed to the page and kept for the scrubber, at most (plus the last)


@dataclass
class Frame:
    step: int
    tokens: np.ndarray  # (B, L) int64: the sampler's state; the mask id marks undecided slots
    decided: np.ndarray  # (B, L) int64: step at which each slot last changed, -1 if it never did


@dataclass
class Run:
    start: List[dict]  # the canvas the run started from (its fixed slots stay put)
    steps: int  # predictor steps; the final denoising step is steps + 1
    mask: Optional[int]  # mask id (absorbing graph), None for the uniform graph
    frames: List[Frame] = field(default_factory=list)
    counts: List[List[int]] = field(default_factory=list)  # (steps + 2, B): masked slots, or changes (uniform)

    @property
    def last(self) -> int:
        return self.steps + 1


def record(pipe, start, ids, fixed, steps: int, predictor: str, seed: int, batch: int) -> Iterator[Run]:
    """Stream a run of `batch` candidates for the canvas (`ids`, `fixed`: (L,)); ValueError on bad input."""
    stream = pipe.stream(ids, fixed, steps=steps, predictor=predictor, seed=seed, batch=batch)
    mask = getattr(pipe.graph, "mask", None)
    run = Run(start, steps, mask)
    every = math.ceil((steps + 2) / MAX_FRAMES)
    free = ~torch.tensor(fixed, device=pipe.device)  # (L,)
    decided = None
    for state in stream:
        decided = torch.full_like(state.tokens, -1) if decided is None else decided  # (B, L)
        decided[state.changed] = state.step
        open_ = (state.tokens == mask) & free if mask is not None else state.changed  # (B, L)
        run.counts.append(open_.sum(1).tolist())
        if state.step % every == 0 or state.done:
            run.frames.append(Frame(state.step, state.tokens.cpu().numpy(), decided.cpu().numpy().copy()))
            yield run
