"""Runs, recorded while they stream: frames for the canvas and the scrubber, counts for the plots,
and a visitor's history of runs and their branches.

`record` consumes `SEDDPipeline.stream` directly and yields the growing `Run` after each kept frame:
every state when there are few, every k-th state (and always the last) when there are many. Everything
it records comes from the sampler's states: the slots still open, each row's time, the network calls.
A branch continues one candidate of a run from one of its frames; its frames start with that
candidate's frames up to there, so each run in the `History` can be scrubbed from its very start.
"""
import math
from dataclasses import dataclass, field
from typing import Iterator, List, Optional

import numpy as np
import torch

from sedd_core.controls import Controls
from sedd_core.pipeline import Ranked
from sedd_core.samplers import Settings

MAX_FRAMES = 64  # frames streamed to the page and kept for the scrubber, at most (plus the last)
MAX_RUNS = 16  # runs a visitor's history keeps; the oldest goes first


@dataclass
class Frame:
    step: int
    tokens: np.ndarray  # (B, L) int64: the sampler's state; ids past the vocabulary are masks
    decided: np.ndarray  # (B, L) int64: step at which each slot last changed, -1 if it never did
    calls: int  # network calls up to this state


@dataclass
class Run:
    start: List[dict]  # the canvas the run started from (its fixed slots stay put)
    settings: Settings  # the sampler, steps, controls and options: with the seed and
    seed: int  # the candidates, all it takes to regenerate it
    candidates: int
    last: int = 0  # the step of the final state
    masked: bool = True  # absorbing graph: undecided slots are masks (else every free slot is always open)
    frames: List[Frame] = field(default_factory=list)
    counts: List[List[int]] = field(default_factory=list)  # per state (B,): masked slots, or changes (uniform)
    times: List[List[float]] = field(default_factory=list)  # per state (B,): each row's diffusion time
    parent: Optional[int] = None  # the run (its number in the history) this one branched from ...
    at_frame: Optional[int] = None  # ... at this frame of it
    ranking: List[Ranked] = field(default_factory=list)  # the candidates best first, when they were ranked
    origin: str = ""  # where it came from when not from this history (an imported file, a stop)
    preview: str = ""  # the start of its shown candidate's final text, for the history
    stopped: bool = False  # stopped while it ran: `record` takes no more of its states

    @property
    def best(self) -> int:
        """The batch row shown first: the best ranked candidate, or the first."""
        return self.ranking[0].index if self.ranking else 0

    def cut(self) -> "Run":
        """This run as far as it went (its last kept frame its last step), for a run that was stopped:
        a copy, so that states recorded after the stop change nothing."""
        step = self.frames[-1].step
        return Run(self.start, self.settings, self.seed, self.candidates, step, self.masked, list(self.frames),
                   self.counts[:step + 1], self.times[:step + 1], self.parent, self.at_frame,
                   origin=f"stopped at step {step} of {self.last}")

    def branch(self, frame: int, row: int, start: List[dict], seed: int, batch: int) -> "Run":
        """A new run with this one's settings that has candidate `row`'s history up to `frame` (for each
        of its `batch` rows)."""
        step = self.frames[frame].step
        rows = lambda a: np.repeat(a[row:row + 1], batch, 0)  # noqa: E731
        return Run(start, self.settings, seed, batch, step, self.masked,
                   [Frame(f.step, rows(f.tokens), rows(f.decided), f.calls) for f in self.frames[:frame + 1]],
                   [[c[row]] * batch for c in self.counts[:step + 1]], [[t[row]] * batch for t in self.times[:step + 1]])


@dataclass
class History:
    """A visitor's runs (first runs and branches) and the one the scrubber shows."""

    runs: List[Run] = field(default_factory=list)
    current: int = 0
    running: Optional[Run] = None  # the run streaming now, until it is added (or stopped)

    @property
    def run(self) -> Run:
        return self.runs[self.current]

    def copy(self) -> "History":
        """A history of the same runs, to change without touching this one."""
        return History(list(self.runs), self.current)

    def add(self, run: Run) -> int:
        """Append `run` and show it; past MAX_RUNS the oldest run goes (its branches say so)."""
        self.runs.append(run)
        while len(self.runs) > MAX_RUNS:
            self.runs.pop(0)
            for r in self.runs:
                if r.parent == 0:
                    r.parent, r.at_frame, r.origin = None, None, "a branch of a run no longer kept"
                elif r.parent is not None:
                    r.parent -= 1
        self.current = len(self.runs) - 1
        return self.current

    def labels(self) -> List[tuple]:
        """(label, index) of every run, for a dropdown."""
        def label(n, r):
            kind = (r.origin or "run") if r.parent is None else (f"branch of run {r.parent + 1} at frame {r.at_frame}"
                                                                 + (f", {r.origin}" if r.origin else ""))
            text = f" · “{r.preview}”" if r.preview else ""
            return f"{n + 1}: {kind} · {describe(r.settings)} · seed {r.seed}{text}"
        return [(label(n, r), n) for n, r in enumerate(self.runs)]


def describe(settings: Settings) -> str:
    """A run's settings in a few words, for the status line and the history: the sampler, its steps if
    it takes any, what differs from the defaults, and "(not exact)" where the run is not."""
    words, defaults = [settings.predictor], Controls()
    if settings.sampler.takes_steps:
        words.append(f"{settings.steps} steps")
    words += [f"{k.replace('_', '-')} {getattr(settings.controls, k)}" for k in ("temperature", "top_k", "top_p")
              if getattr(settings.controls, k) != getattr(defaults, k)]
    words += [f"{k.replace('_', '-')} {v}" for k, v in settings.options.items() if v != settings.sampler.options[k]]
    return ", ".join(words) + ("" if settings.exact else " (not exact)")


def record(pipe, run: Run, states) -> Iterator[Run]:
    """Record the pipeline's `states` (SEDDPipeline.stream or .branch) into `run` (frames already in it
    are kept and the new ones follow them), yielding it after each kept frame."""
    base, base_calls = run.last, run.frames[-1].calls if run.frames else 0
    decided, every = None, 1
    for state in states:
        if run.stopped:
            return
        if decided is None:  # the start state
            run.last, every = base + state.last, math.ceil((state.last + 1) / MAX_FRAMES)
            if base:  # a branch: its start is the parent's frame, already recorded
                decided = torch.as_tensor(run.frames[-1].decided)
                continue
            run.masked = pipe.absorbing
            decided = torch.full_like(state.tokens, -1)  # (B, L)
        decided[state.changed] = base + state.step
        run.counts.append((state.open if run.masked else state.changed).sum(1).tolist())
        run.times.append(state.t.tolist())
        if state.step % every == 0 or state.done:
            run.frames.append(Frame(base + state.step, state.tokens.cpu().numpy(), decided.cpu().numpy().copy(),
                                    base_calls + state.calls))
            yield run
