"""What the page's events do: presets, adding text, generating (streamed), scrubbing, scoring.

Each handler takes and returns plain values, so the same code serves the page and `gradio_client`.
The pipeline checks what it is given (its ValueError messages are the contract); the handlers add
only the page's own limits (steps, candidates, points, the time a request may take) and show every
ValueError as a gr.Error, through `shown`.
"""
import inspect
import time
from functools import lru_cache, wraps
from typing import List

import gradio as gr

from sedd_core.checks import whole

from . import plots
from .candidates import candidates_html
from .run import record
from .score import score_view
from .slots import check_length, fail, frame_slots, preset, text_slots, to_arrays

STEPS = (8, 16, 32, 64, 128, 256, 512, 1024)  # the page's log-scale choices; any integer in between works
MAX_CANDIDATES, MAX_POINTS = 4, 1024
TIME_LIMIT = 60.0  # seconds a generate request may run (app.py --time-limit)


def as_number(value):
    """Numeric text from the page or an API caller ("128", " 7 ") as a number; anything else as it is,
    for the checks that follow to name."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def shown(handler):
    """The handler with every ValueError turned into a message for the page (generators too)."""
    if inspect.isgeneratorfunction(handler):
        @wraps(handler)
        def stream(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except gr.Error:
                raise
            except ValueError as err:
                raise fail(str(err)) from err
        return stream

    @wraps(handler)
    def call(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:  # already worded for the page (gr.Error is a ValueError)
            raise
        except ValueError as err:
            raise fail(str(err)) from err
    return call


class Editor:
    def __init__(self, pipe, time_limit: float = TIME_LIMIT):
        self.pipe, self.time_limit = pipe, time_limit
        self.piece = lru_cache(maxsize=None)(self._piece)

    def _piece(self, token: int) -> str:
        return "[mask]" if token >= self.pipe.config.tokens else self.pipe.tokenizer.pieces([token])[0]

    @shown
    def preset(self, kind: str, before: str, after: str, gap) -> List[dict]:
        return preset(self.pipe, kind, before, after, as_number(gap))

    @shown
    def add_text(self, slots: List[dict], evt: gr.EventData) -> List[dict]:
        """Insert typed text (event data {text, at}) as fixed slots at the caret."""
        slots = list(slots or [])
        at = min(max(whole("the caret", getattr(evt, "at", len(slots)), -2**31, 2**31), 0), len(slots))
        new = slots[:at] + text_slots(self.pipe, getattr(evt, "text", "")) + slots[at:]
        check_length(new, self.pipe.length)
        return new

    def view(self, run, frame: int, row: int):
        """(canvas, candidates panel, status) of candidate `row` at recorded `frame`."""
        f = run.frames[frame]
        slots = frame_slots(self.pipe, run.start, f.tokens[row].tolist(), f.decided[row].tolist(), run.last)
        left = run.counts[f.step][row]
        what = "masked slots left" if run.masked else "slots changed in this step"
        status = (f"Step {f.step} of {run.last} ({run.predictor}) · t = {run.times[f.step][row]:.3f} · {left} {what}"
                  f" · {f.calls} network calls")
        return slots, candidates_html(self.pipe, run, frame, row), status

    @shown
    def generate(self, slots, predictor: str, steps, seed, candidates):
        """Stream a run: one output tuple per kept frame (see run.MAX_FRAMES), plots and scrubber at the end."""
        ids, fixed = to_arrays(slots)
        steps = whole("steps", as_number(steps), STEPS[0], STEPS[-1])
        candidates = whole("candidates", as_number(candidates), 1, MAX_CANDIDATES)
        seed = as_number(seed)
        t0, first = time.perf_counter(), None
        for run in record(self.pipe, slots, ids, fixed, steps, predictor, seed, candidates):
            frame = len(run.frames) - 1
            canvas, panel, status = self.view(run, frame, 0)
            first = first if first is not None else time.perf_counter() - t0
            if time.perf_counter() - t0 > self.time_limit and run.frames[-1].step < run.last:
                raise fail(f"This run passed the server's limit of {self.time_limit:g} s per request and was "
                           "stopped: use fewer steps, fewer candidates, fewer free slots or the first_hitting "
                           "sampler.")
            if run.frames[-1].step < run.last:
                yield canvas, panel, f"{status} · {time.perf_counter() - t0:.1f} s", *[gr.skip()] * 5
        total = time.perf_counter() - t0
        yield (canvas, panel, f"Done: {status} · first frame after {first:.2f} s, all in {total:.2f} s",
               plots.decisions(run, frame, 0, self.piece), plots.open_slots(run), run,
               gr.Slider(minimum=0, maximum=frame, value=frame, step=1, interactive=True),
               gr.Radio(choices=list(range(1, candidates + 1)), value=1, interactive=True))

    @shown
    def scrub(self, run, frame, shown_candidate):
        """Show recorded `frame` of candidate `shown_candidate` (1-based) in the canvas, panel and heatmap."""
        if run is None:
            raise fail("Generate first: the scrubber replays the last run.")
        frame = whole("the frame", as_number(frame), 0, len(run.frames) - 1)
        row = whole("the candidate", as_number(shown_candidate), 1, run.frames[0].tokens.shape[0]) - 1
        canvas, panel, status = self.view(run, frame, row)
        return canvas, panel, status, plots.decisions(run, frame, row, self.piece)

    @shown
    def score(self, text: str, points, seed):
        return score_view(self.pipe, text, whole("points", as_number(points), 1, MAX_POINTS), as_number(seed))
