"""What the page's events do: presets and templates, adding text, generating and branching (streamed),
scrubbing a visitor's history of runs, ranking, gap-length search, exporting and importing runs, scoring.

Each handler takes and returns plain values, so the same code serves the page and `gradio_client`.
The pipeline checks what it is given (its ValueError messages are the contract); the handlers add
only the page's own limits (steps, candidates, points, the time a request may take) and show every
ValueError as a gr.Error, through `shown`.
"""
import inspect
import json
from dataclasses import asdict
import shutil
import tempfile
import time
from contextlib import contextmanager
from functools import lru_cache, wraps
from pathlib import Path
from typing import List, NamedTuple

import gradio as gr

from sedd_core.checks import DEFAULT_STEPS, MAX_BATCH, whole
from sedd_core.controls import Controls
from sedd_core.pipeline import TimeUp
from sedd_core.samplers import SAMPLERS, Settings, final, options

from . import export, plots
from .candidates import candidates_html, choices
from .run import MAX_FRAMES, History, Run, describe, record
from .score import score_view
from .slots import (check_length, fail, frame_slots, preset, template_slots, text_slots, to_arrays,
                    token_slots)

STEPS = (8, 16, 32, 64, 128, 256, 512, 1024)  # the page's log-scale choices within checks.STEPS; any number works
RANK_POINTS = 32
MAX_GAP_LENGTHS = 32  # lengths one gap-length search may try
TIME_LIMIT = 60.0  # seconds a request that runs the model may take (app.py --time-limit)
KEEP_EXPORTS = 32  # newest export files kept on disk


def as_number(value):
    """Numeric text from the page or an API caller ("128", " 7 ") as a number; anything else as it is,
    for the checks that follow to name."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


TOO_LONG = ("This request passed the server's limit of {limit:g} s and was stopped: use fewer steps, fewer "
            "candidates, fewer free slots, fewer gap lengths or the first_hitting sampler.")


@contextmanager
def messages(limit: float = TIME_LIMIT):
    """Every ValueError raised inside turned into a message for the page."""
    try:
        yield
    except gr.Error:  # already worded for the page (gr.Error is a ValueError)
        raise
    except TimeUp as err:
        raise fail(TOO_LONG.format(limit=limit)) from err
    except ValueError as err:
        raise fail(str(err)) from err


def shown(handler):
    """The handler (a generator too) with every ValueError shown as a message on the page."""
    if inspect.isgeneratorfunction(handler):
        @wraps(handler)
        def stream(self, *args, **kwargs):
            with messages(self.time_limit):
                yield from handler(self, *args, **kwargs)
        return stream

    @wraps(handler)
    def call(self, *args, **kwargs):
        with messages(self.time_limit):
            return handler(self, *args, **kwargs)
    return call


def recorded(history, why: str) -> Run:
    """The history's shown run; a message saying `why` a run is needed when there is none."""
    if not history or not history.runs:
        raise fail(f"Generate first: {why}.")
    return history.run


def candidate(run: Run, shown_candidate) -> int:
    """The batch row of 1-based candidate number `shown_candidate` of `run`."""
    return whole("the candidate", as_number(shown_candidate), 1, run.frames[0].tokens.shape[0]) - 1


class View(NamedTuple):
    """The page's outputs of a run's view, by name (ui.py wires the components in this order); a field
    left out is not changed on the page."""

    canvas: object = gr.skip()
    panel: object = gr.skip()
    status: object = gr.skip()
    heat: object = gr.skip()
    left: object = gr.skip()
    history: object = gr.skip()
    frame: object = gr.skip()
    shown: object = gr.skip()
    runs: object = gr.skip()


SETTINGS = ("predictor", "steps", "seed", "candidates", "temperature", "top_k", "top_p", "confidence", "schedule",
            "remask")  # the page's sampling controls, in the order an import sets them (ui.py)
OPTIONS = ("remask", "confidence", "schedule")  # the samplers' options the page offers (ui.py)
OPTION_INFO = {"remask": "chance per step to re-mask a decided slot, for {remask_from:g} > t > {remask_until:g}"
               .format(**options())}  # their notes on the page, where they apply


class Editor:
    def __init__(self, pipe, time_limit: float = TIME_LIMIT):
        self.pipe, self.time_limit = pipe, time_limit
        self.max_import_bytes = export.max_file_bytes(pipe.length, MAX_BATCH, MAX_FRAMES + 1)
        self.exports = None  # one folder for this editor's export files, made at the first export
        self.piece = lru_cache(maxsize=None)(self._piece)

    def _piece(self, token: int) -> str:
        return self.pipe.pieces([token], mask="[mask]")[0]

    @shown
    def preset(self, kind: str, before: str, after: str, gap) -> List[dict]:
        return preset(self.pipe, kind, before, after, as_number(gap))

    @shown
    def template(self, text: str) -> List[dict]:
        """The canvas of a template: "[[N]]" marks N masked slots; a word glued to a gap anchors a slot."""
        return template_slots(self.pipe, text)

    @shown
    def add_text(self, slots: List[dict], evt: gr.EventData) -> List[dict]:
        """Insert typed text (event data {text, at}) as fixed slots at the caret."""
        slots = list(slots or [])
        at = min(max(whole("the caret", getattr(evt, "at", len(slots)), -2**31, 2**31), 0), len(slots))
        new = slots[:at] + text_slots(self.pipe, getattr(evt, "text", "")) + slots[at:]
        check_length(new, self.pipe.length)
        return new

    def settings(self, predictor, steps, **values) -> Settings:
        """A run's settings (the page's, an API caller's or an imported file's alike), checked once by
        the library (samplers.Settings): the values that passed are the ones stored, shown and exported.
        `values`: Controls' fields and the sampler's options (numbers, or numeric text from the page);
        an option of another sampler is passed on (and refused) only when it is not at its default."""
        values = {k: as_number(v) for k, v in values.items()}
        controls = Controls(**{k: values.pop(k) for k in Controls.__dataclass_fields__ if k in values})
        own, defaults = SAMPLERS[predictor].options if predictor in SAMPLERS else {}, options()
        values = {k: v for k, v in values.items() if k in own or v != defaults.get(k)}
        return self.pipe.settings(predictor, as_number(steps), controls, **values)

    @staticmethod
    def sampler_controls(predictor: str) -> list:
        """Steps, remask, confidence measure and schedule: enabled where the sampler reads them (its registry
        entry), disabled with a note (and set back to their defaults) where it does not."""
        sampler = SAMPLERS.get(predictor)
        if sampler is None:
            return [gr.skip()] * 4
        steps = gr.update(interactive=sampler.takes_steps,
                          info="its number of network calls" if sampler.takes_steps else f"{predictor} takes no steps")
        defaults = options()  # one that does not apply goes back to its default, so that Generate never sends it
        own = [gr.update(interactive=True, info=OPTION_INFO.get(name)) if name in sampler.options else
               gr.update(interactive=False, info=f"does not apply to {predictor}", value=defaults[name])
               for name in OPTIONS]
        return [steps, *own]

    def view(self, run: Run, frame: int, row: int):
        """(canvas, candidates panel, status) of candidate `row` at recorded `frame`."""
        f = run.frames[frame]
        slots = frame_slots(self.pipe, run.start, f.tokens[row].tolist(), f.decided[row].tolist(), run.last)
        left = run.counts[f.step][row]
        what = "masked slots left" if run.masked else "slots changed in this step"
        status = (f"Step {f.step} of {run.last} ({describe(run.settings)}) · t = {run.times[f.step][row]:.3f}"
                  f" · {left} {what} · {f.calls} network calls")
        return slots, candidates_html(self.pipe, run, frame, row), status

    def deadline(self) -> float:
        """When a request that starts now must stop (time.monotonic(); the pipeline checks it before
        every network call)."""
        return time.monotonic() + self.time_limit

    def _stream(self, history: History, run: Run, states, deadline: float):
        """Record `run` from the pipeline's `states` into `history`, yielding the page's View per frame
        (canvas, panel and status while it runs, and the history once, so that Stop finds the run in
        it: `stop`; plots and pickers at the end)."""
        t0, first = time.perf_counter(), None
        history.running = run
        for run in record(self.pipe, run, states):
            frame = len(run.frames) - 1
            if run.frames[-1].step < run.last:
                canvas_now, panel, status = self.view(run, frame, 0)
                first = first if first is not None else time.perf_counter() - t0
                yield View(canvas_now, panel, f"{status} · {time.perf_counter() - t0:.1f} s",
                           history=history if frame == 0 else gr.skip())
        if run.stopped:  # `stop` has recorded it as far as it went
            return
        if run.frames[0].tokens.shape[0] > 1 and self.pipe.absorbing:  # the candidates, best first
            ids, fixed, _ = to_arrays(run.start)
            run.ranking = self.pipe.rank(ids, fixed, run.frames[-1].tokens, RANK_POINTS, run.seed, deadline)
        if history.running is not run:  # stopped while it was ranked
            return
        history.running = None
        self._preview(run)
        history.add(run)
        total = time.perf_counter() - t0
        yield self.show(history, len(run.frames) - 1, f"Done · {total:.2f} s in all"
                        + (f", first frame after {first:.2f} s" if first is not None else ""))

    def _preview(self, run: Run, chars: int = 40):
        """The start of the best (or first) candidate's final text, for the history's labels."""
        text = " ".join(self.pipe.decode(run.frames[-1].tokens[run.best].tolist()).split())
        run.preview = text if len(text) <= chars else text[:chars - 1] + "…"

    def show(self, history: History, frame: int, note: str = ""):
        """Every output of a run's view: the best candidate (when ranked) at `frame`, plots, pickers."""
        run = history.run
        best = run.best
        canvas, panel, status = self.view(run, frame, best)
        return View(canvas=canvas, panel=panel, status=f"{note}: {status}" if note else status,
                    heat=plots.decisions(run, frame, best, self.piece), left=plots.open_slots(run), history=history,
                    frame=gr.Slider(minimum=0, maximum=max(1, len(run.frames) - 1), value=frame, step=1,
                                    interactive=len(run.frames) > 1),
                    shown=gr.Radio(choices=choices(run), value=best + 1, interactive=True),
                    runs=gr.Dropdown(choices=history.labels(), value=history.current, interactive=True))

    @shown
    def generate(self, slots, predictor: str, steps, seed, candidates, temperature=1.0, top_k=0, top_p=1.0,
                 confidence="max", schedule="linear", remask=0.0, history=None):
        """Stream a run: one output tuple per kept frame (see run.MAX_FRAMES), plots and pickers at the end."""
        canvas = to_arrays(slots)
        settings = self.settings(predictor, steps, temperature=temperature, top_k=top_k, top_p=top_p,
                                 confidence=confidence, schedule=schedule, remask=remask)
        seed, candidates, deadline = as_number(seed), as_number(candidates), self.deadline()
        states = self.pipe.stream(*canvas, settings=settings, seed=seed, batch=candidates, deadline=deadline)
        run = Run(slots, settings, int(seed), int(candidates))  # the values stream() accepted
        yield from self._stream(history or History(), run, states, deadline)

    @shown
    def branch(self, slots, history, frame, shown_candidate, seed):
        """Continue candidate `shown_candidate` of the scrubbed run from recorded `frame`, with another seed:
        the canvas as it stands (that frame, with any slots changed by hand) is the state to continue from."""
        parent = recorded(history, "a branch continues a recorded run")
        frame = whole("the frame", as_number(frame), 0, len(parent.frames) - 1)
        row = candidate(parent, shown_candidate)
        canvas = to_arrays(slots)
        if len(slots) != len(parent.start):
            raise fail("The canvas no longer has the run's slots: a branch keeps them (change tokens, not the length).")
        state = [s["id"] if s.get("id") is not None else self.pipe.mask_id for s in slots]  # masks where undecided
        seed, deadline = as_number(seed), self.deadline()
        states = self.pipe.branch(*canvas, state, parent.times[parent.frames[frame].step][row], parent.candidates,
                                  settings=parent.settings, seed=seed, deadline=deadline)
        run = parent.branch(frame, row, slots, int(seed), parent.candidates)  # the seed stream() accepted
        run.parent, run.at_frame = history.current, frame
        yield from self._stream(history, run, states, deadline)

    @shown
    def stop(self, history):
        """The page's Stop (which cancels the streaming run): that run recorded as far as it went and shown,
        saying so; the page as it was when no run had started yet."""
        run = history.running if history else None
        if run is None or not run.frames:  # stopped before its first state (or run in another process: ZeroGPU)
            if history and history.runs:
                return self.show(history, len(history.run.frames) - 1, "Stopped: nothing of that run was kept; "
                                                                        "the last finished run")
            return View(status="Stopped: nothing of that run was kept.")
        history.running, run.stopped = None, True
        cut = run.cut()
        self._preview(cut)
        history.add(cut)
        return self.show(history, len(cut.frames) - 1, f"Stopped at step {cut.last} of {run.last}, recorded as "
                                                        "far as it went (scrub it or branch from it)")

    @shown
    def scrub(self, history, frame, shown_candidate):
        """Show recorded `frame` of candidate `shown_candidate` (1-based) in the canvas, panel and heatmap."""
        run = recorded(history, "the scrubber replays the last run")
        frame = whole("the frame", as_number(frame), 0, len(run.frames) - 1)
        row = candidate(run, shown_candidate)
        canvas, panel, status = self.view(run, frame, row)
        return View(canvas, panel, status, plots.decisions(run, frame, row, self.piece))[:4]

    @shown
    def pick_run(self, history, index):
        """Show run `index` of the history (a first run or a branch) at its last frame."""
        recorded(history, "there is no run to show")
        history.current = whole("the run", as_number(index), 0, len(history.runs) - 1)
        return self.show(history, len(history.run.frames) - 1)

    @shown
    def rank(self, slots: list, sampler: str, steps: int, seed: int, candidates: int) -> list:
        """Sample `candidates` for the canvas in one batch and return them best first by the model's own
        conditional score: [{"text", "slots", "nats_per_slot", "stderr"}, ...]."""
        ids, fixed, anchors = to_arrays(slots)
        settings, seed, deadline = self.settings(sampler, steps), as_number(seed), self.deadline()
        state = final(self.pipe.stream(ids, fixed, anchors, settings=settings, seed=seed, batch=as_number(candidates),
                                       deadline=deadline))
        ranked = self.pipe.rank(ids, fixed, state.tokens, RANK_POINTS, seed, deadline)
        return [{"text": r.text, "slots": r.slots, "nats_per_slot": r.nats_per_slot, "stderr": r.stderr} for r in ranked]

    def _fills(self, before, after, min_len, max_len, seed, predictor=None, steps=DEFAULT_STEPS, **values) -> list:
        """Every gap length's best fill (pipeline.Fill), drawn with the page's sampler, steps and sampling
        controls, two tries a length."""
        low = whole("the shortest gap", as_number(min_len), 1, self.pipe.length)
        high = whole("the longest gap", as_number(max_len), low, min(self.pipe.length, low + MAX_GAP_LENGTHS - 1))
        settings = self.settings(predictor or self.pipe.predictors[0], steps, **values)
        return self.pipe.gap_search(before or "", after or "", range(low, high + 1), seed=as_number(seed),
                                    settings=settings, deadline=self.deadline())

    @shown
    def gap_search(self, before: str, after: str, min_len: int, max_len: int, seed: int) -> list:
        """Fill a gap of unknown length between `before` and `after` at every length from `min_len` to
        `max_len` with the model's default sampler: [{"length", "text", "nats_per_slot"}, ...], best first.
        (The page's search uses the page's sampler and controls: gap_choices.)"""
        return [{"length": f.length, "text": f.text, "nats_per_slot": f.nats_per_slot}
                for f in self._fills(before, after, min_len, max_len, seed)]

    @shown
    def gap_choices(self, before, after, min_len, max_len, seed, predictor, steps, temperature=1.0, top_k=0,
                    top_p=1.0, confidence="max", schedule="linear", remask=0.0):
        """The gap search for the page, with its sampler and sampling controls: the fills, best first."""
        found = self._fills(before, after, min_len, max_len, seed, predictor, steps, temperature=temperature,
                            top_k=top_k, top_p=top_p, confidence=confidence, schedule=schedule, remask=remask)
        choices = [(f"{f.length} slot{'s' * (f.length != 1)} · {f.nats_per_slot:.2f} nats/slot · {f.text}", n)
                   for n, f in enumerate(found)]
        return gr.Radio(choices=choices, value=None, interactive=True), found

    @shown
    def use_gap(self, choice, found, before, after):
        """The chosen fill as a canvas: the texts fixed, the fill as free tokens to keep or resample."""
        if choice is None or not found:
            raise fail("Search first, then choose a fill.")
        fill = found[whole("the choice", as_number(choice), 0, len(found) - 1)]
        ids, fixed, anchors = self.pipe.compose([p for p in (before, fill.length, after) if p])
        pieces = self.pipe.pieces(fill.ids)
        return [s if s["fixed"] else {**s, "id": i, "text": p}  # the fill's tokens, free to keep or resample
                for s, i, p in zip(token_slots(self.pipe, ids, fixed, anchors), fill.ids, pieces)]

    def _export_path(self, suffix: str) -> Path:
        """A new file in this editor's export folder, which keeps the newest KEEP_EXPORTS files (Gradio
        serves a copy from its own cache, which it cleans: see ui.KEEP_FILES)."""
        if self.exports is None:
            self.exports = Path(tempfile.mkdtemp(prefix="sedd-exports-"))
        for old in sorted(self.exports.iterdir(), key=lambda p: p.stat().st_mtime)[:1 - KEEP_EXPORTS]:
            shutil.rmtree(old, ignore_errors=True)  # one folder per file, so each keeps its plain name
        return Path(tempfile.mkdtemp(prefix="run-", dir=self.exports)) / f"sedd-run.{suffix}"

    @shown
    def export_json(self, history) -> str:
        """The scrubbed run as a JSON file (see export.py)."""
        run = recorded(history, "there is no run to export")
        path = self._export_path("json")
        path.write_text(json.dumps(export.to_json(self.pipe, run)))
        return str(path)

    @shown
    def export_gif(self, history, shown_candidate) -> str:
        """The scrubbed run's candidate `shown_candidate` denoising, as an animated GIF."""
        run = recorded(history, "there is no run to export")
        return export.gif(self.pipe, run, candidate(run, shown_candidate), str(self._export_path("gif")))

    @shown
    def import_run(self, file, history):
        """A run exported earlier, checked whole, added to the history to replay, scrub and branch; a file
        that is refused leaves the history as it was."""
        if not file:
            raise fail("Choose an exported run file (.json) first.")
        try:
            if Path(file).stat().st_size > self.max_import_bytes:
                raise fail(f"The file is larger than any run this editor exports "
                           f"({self.max_import_bytes / 2**20:.1f} MB at most).")
            data = json.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise fail(f"The file is not an exported run: {str(err)[:200]}") from err
        run = export.from_json(self.pipe, data, self.settings, MAX_FRAMES + 1)
        was = "" if run.parent is None else f", a branch of its run {run.parent + 1} at frame {run.at_frame}"
        run.parent, run.at_frame, run.origin = None, None, f"imported{was}"  # its parent is in another history
        self._preview(run)
        history = (history or History()).copy()
        history.add(run)
        view = self.show(history, len(run.frames) - 1, "Imported, with its settings: Generate makes it again")
        s = run.settings
        values = {**options(), "predictor": s.predictor, "steps": s.steps, "seed": run.seed,
                  "candidates": run.candidates, **asdict(s.controls), **s.options}
        return (*view, *[values[name] for name in SETTINGS])

    @shown
    def score(self, text: str, points, seed):
        return score_view(self.pipe, text, as_number(points), as_number(seed), self.deadline())
