"""What the page's events do: presets, adding text, generating (streamed), scrubbing, scoring.

Each handler takes and returns plain values, so the same code serves the page and `gradio_client`.
Bad input raises a gr.Error with a message for the page.
"""
import time
from functools import lru_cache
from typing import List

import gradio as gr

from . import plots
from .candidates import candidates_html
from .run import record
from .score import score_view
from .slots import check_length, fail, frame_slots, preset, text_slots, to_arrays

STEPS = (8, 16, 32, 64, 128, 256, 512, 1024)  # the page's log-scale choices; any integer in between works
MAX_CANDIDATES = 4


def whole(x, default: int) -> int:
    """`x` as an int when it is a whole number (int, float or numeric text), else `default`."""
    try:
        return int(x) if float(x) == int(float(x)) else default
    except (TypeError, ValueError, OverflowError):
        return default


class Editor:
    def __init__(self, pipe):
        self.pipe = pipe
        self.piece = lru_cache(maxsize=None)(self._piece)

    def _piece(self, token: int) -> str:
        return "[mask]" if token >= self.pipe.config.tokens else self.pipe.tokenizer.pieces([token])[0]

    def preset(self, kind: str, before: str, after: str, gap) -> List[dict]:
        return preset(self.pipe, kind, before, after, int(gap))

    def add_text(self, slots: List[dict], evt: gr.EventData) -> List[dict]:
        """Insert typed text (event data {text, at}) as fixed slots at the caret."""
        slots = list(slots or [])
        at = min(max(int(getattr(evt, "at", len(slots))), 0), len(slots))
        new = slots[:at] + text_slots(self.pipe, getattr(evt, "text", "")) + slots[at:]
        check_length(new, self.pipe.length)
        return new

    def _check(self, predictor: str, steps, seed, candidates):
        if predictor not in self.pipe.predictors:
            raise fail(f"Unknown sampler {predictor!r}: choose one of {', '.join(self.pipe.predictors)}.")
        if not STEPS[0] <= whole(steps, -1) <= STEPS[-1]:
            raise fail(f"Steps must be a whole number from {STEPS[0]} to {STEPS[-1]}, got {steps}.")
        if not 1 <= whole(candidates, -1) <= MAX_CANDIDATES:
            raise fail(f"Candidates must be 1 to {MAX_CANDIDATES}, got {candidates}.")
        if whole(seed, -1) < 0:
            raise fail(f"The seed must be a whole number of at least 0, got {seed}.")
        return whole(steps, 0), whole(seed, 0), whole(candidates, 0)

    def view(self, run, frame: int, row: int):
        """(canvas, candidates panel, status) of candidate `row` at recorded `frame`."""
        f = run.frames[frame]
        slots = frame_slots(self.pipe, run.start, f.tokens[row].tolist(), f.decided[row].tolist(), run.last)
        left = run.counts[f.step][row]
        what = "masked slots left" if run.masked else "slots changed in this step"
        status = (f"Step {f.step} of {run.last} ({run.predictor}) · t = {run.times[f.step][row]:.3f} · {left} {what}"
                  f" · {f.calls} network calls")
        return slots, candidates_html(self.pipe, run, frame, row), status

    def generate(self, slots, predictor: str, steps, seed, candidates):
        """Stream a run: one output tuple per kept frame (see run.MAX_FRAMES), plots and scrubber at the end."""
        ids, fixed = to_arrays(slots, self.pipe)
        steps, seed, candidates = self._check(predictor, steps, seed, candidates)
        t0, first = time.perf_counter(), None
        try:
            for run in record(self.pipe, slots, ids, fixed, steps, predictor, seed, candidates):
                frame = len(run.frames) - 1
                canvas, panel, status = self.view(run, frame, 0)
                first = first if first is not None else time.perf_counter() - t0
                if run.frames[-1].step < run.last:
                    yield canvas, panel, f"{status} · {time.perf_counter() - t0:.1f} s", *[gr.skip()] * 5
            total = time.perf_counter() - t0
        except ValueError as err:  # the pipeline's own checks (e.g. a token id the model does not know)
            raise fail(str(err)) from err
        yield (canvas, panel, f"Done: {status} · first frame after {first:.2f} s, all in {total:.2f} s",
               plots.decisions(run, frame, 0, self.piece), plots.open_slots(run), run,
               gr.Slider(minimum=0, maximum=frame, value=frame, step=1, interactive=True),
               gr.Radio(choices=list(range(1, candidates + 1)), value=1, interactive=True))

    def scrub(self, run, frame, shown):
        """Show recorded `frame` of candidate `shown` (1-based) in the canvas, panel and heatmap."""
        if run is None:
            raise fail("Generate first: the scrubber replays the last run.")
        frame = min(max(whole(frame, 0), 0), len(run.frames) - 1)
        row = min(max(whole(shown, 1), 1), run.frames[0].tokens.shape[0]) - 1
        canvas, panel, status = self.view(run, frame, row)
        return canvas, panel, status, plots.decisions(run, frame, row, self.piece)

    def score(self, text: str, points, seed):
        if not 1 <= whole(points, 0) <= 1024 or whole(seed, -1) < 0:
            raise fail("Points must be 1 to 1024 and the seed a whole number of at least 0.")
        try:
            return score_view(self.pipe, text, whole(points, 0), whole(seed, 0))
        except ValueError as err:
            raise fail(str(err)) from err
