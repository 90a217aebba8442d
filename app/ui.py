"""The page: `build_demo(pipeline) -> gr.Blocks`, with the Editor and Score tabs wired to `events.Editor`.

Stable api_names: preset_continue, preset_lead_in, preset_infill, preset_template, generate, branch,
scrub, pick_run, rank, gap_search, export, export_gif, import, score (add_text is the canvas's own event
and is not part of the API).
"""
import json
from dataclasses import asdict
from functools import partial

import gradio as gr
from starlette.middleware import Middleware

from sedd_core.checks import DEFAULT_STEPS, MAX_BATCH
from sedd_core.checks import STEPS as STEP_RANGE
from sedd_core.controls import Controls
from sedd_core.samplers.confidence import MEASURES, SCHEDULES
from sedd_core.samplers import SAMPLERS, options

from .candidates import CSS as CANDIDATES_CSS
from .candidates import JS as CANDIDATES_JS
from .candidates import STALE
from .canvas import Canvas
from .events import MAX_GAP_LENGTHS, OPTION_INFO, RANK_POINTS, SETTINGS, STEPS, TIME_LIMIT, Editor, View
from .export import max_file_bytes
from .guard import Guard
from .run import MAX_FRAMES
from .score import CSS as SCORE_CSS
from .slots import preset
from .zerogpu import branch_seconds, gap_search_seconds, generate_seconds, on_gpu, rank_seconds, score_seconds

CONCURRENCY = 2  # sampler and score runs at once (shared); the rest wait in the queue
QUEUE = 64  # jobs waiting at once, all visitors together (each client holds at most Guard.per_client)
KEEP_FILES = (600, 3600)  # every 10 minutes, Gradio deletes the uploads and exports older than an hour
SESSION_SECONDS = 3600  # a visitor's history is let go an hour after its last change (or when the tab closes)
INTRO = """# SEDD infill editor
Score Entropy Discrete Diffusion writes every slot at once, so any tokens can be held fixed anywhere.
**Click** a chip to fix (dark) or free (dashed) it, **shift-click** to give a range the same state,
click **between** chips to move the caret, then type text or insert a masked gap there.
Keys on the canvas: arrows move the caret (Shift selects), Space toggles, f fixes, u frees, g inserts a gap,
Backspace/Delete delete. Generated tokens are coloured by the step at which the sampler decided them."""
EDITED = "**Edited since the run:** "  # the status line's start once the canvas is changed after a run
# The visitor changed the canvas (by hand, a preset, a template, a fill or added text; a run's frames do not
# count): the status line and the candidates describe the run, no longer the canvas, and say so (page-side).
MARK_EDITED = (f"(status, panel) => status && !status.startsWith({json.dumps(EDITED)}) "
               f"? [{json.dumps(EDITED)} + status, {json.dumps(STALE)} + panel] : undefined")
# Generate is disabled while its run streams (a second click would do nothing), and back when the run ends,
# fails or is stopped (page-side).
RUNNING = "() => ({__type__: 'update', interactive: false, value: 'Generating: wait, or press Stop'})"
READY = "() => ({__type__: 'update', interactive: true, value: 'Generate'})"


class Slider(gr.Slider):
    """A slider whose value reaches the handler as sent (the page keeps it in range; an API caller may
    send anything): the handler checks it and says what is wrong, where Gradio's own check would not."""

    def preprocess(self, payload):
        return payload


class Number(gr.Number):
    """A number field that, like `Slider`, leaves the checking to the handler."""

    def preprocess(self, payload):
        return payload


def samplers_info(names) -> str:
    """One line per sampler, from the registry: what it does, and whether it is exact."""
    return "; ".join(f"{n}: {SAMPLERS[n].help}" + ("" if SAMPLERS[n].exact else " (not exact)") for n in names)


EXACT_TITLE, SHARPER_TITLE = "Sampling (the defaults: exact)", "Sampling (Sharper: top-k 50, not exact)"
SHARPER = {"top_k": 50}  # the bundled model's pick on its quality/diversity frontier (benchmarks/RESULTS.md)
SHARPER_INFO = ("Top-k 50 is not exact. On the bundled model it cut the generative perplexity of samples 4.6x (275 "
                "to 59 under the v1 AR judge) for 9% less unigram entropy (benchmarks/RESULTS.md).")
TEMPLATE_INFO = ("[[N]] marks N masked slots; a word glued to a gap (un[[3]], [[2]]ing) anchors the gap's first "
                 "(last) slot, one of the N: its token must start (end) with that word")


def sampling_values(**changes) -> list:
    """The Sampling accordion's values (temperature, top-k, top-p, confidence, schedule, remask): the
    defaults of the controls and of the samplers' options, with `changes`."""
    values = {**asdict(Controls()), **options(), **changes}
    return [values[k] for k in ("temperature", "top_k", "top_p", "confidence", "schedule", "remask")]


def starting_canvas(pipe):
    """An infill example that fits the model, or an empty canvas when it does not."""
    before, after = "Once upon a time", " happily ever after."
    room = pipe.length - len(pipe.encode(before)) - len(pipe.encode(after))
    return preset(pipe, "infill", before, after, min(16, room)) if room >= 1 else []


def serve(pipe, time_limit: float = TIME_LIMIT, **launch) -> gr.Blocks:
    """Build the page, queue it and launch it (`launch`: gr.Blocks.launch's arguments) behind the
    Guard (guard.py). Every refused request answers with its message, Gradio's own input checks
    included (show_error); uploads are capped at the largest run file the editor exports."""
    demo = build_demo(pipe, time_limit)
    uploads = max_file_bytes(pipe.length, MAX_BATCH, MAX_FRAMES + 1)
    demo.queue(max_size=QUEUE).launch(show_error=True, max_file_size=uploads,
                                      app_kwargs={"middleware": [Middleware(Guard, blocks=demo)]}, **launch)
    return demo


def build_demo(pipe, time_limit: float = TIME_LIMIT) -> gr.Blocks:
    ed = Editor(pipe, time_limit)
    with gr.Blocks(title="SEDD infill editor", delete_cache=KEEP_FILES) as demo:
        gr.Markdown(INTRO)
        about = f"{pipe.lead} ([model card](#model-card)) " if pipe.lead else f"{pipe.parameters / 1e6:.1f}M parameters, "
        gr.Markdown(f"Model **{pipe.name}**: {about}{pipe.summary}.",
                    elem_id="model")
        with gr.Tab("Editor"):
            with gr.Row():
                with gr.Column(scale=3):
                    canvas = Canvas(pipe.length, value=starting_canvas(pipe), elem_id="canvas")
                    with gr.Row():  # next to the canvas, so a person watches it stream after the click
                        gen = gr.Button("Generate", variant="primary", elem_id="generate", scale=3)
                        stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1)
                    status = gr.Markdown(elem_id="status")
                    with gr.Accordion("Presets: continue, lead-in, infill, template", open=False):
                        with gr.Row():
                            before = gr.Textbox(label="Text before (prefix)", value="Once upon a time")
                            after = gr.Textbox(label="Text after (suffix)", value=" happily ever after.")
                            gap = Slider(1, pipe.length, value=min(16, pipe.length), step=1, label="Masked slots")
                        with gr.Row():
                            cont = gr.Button("Continue: prefix + masks")
                            lead = gr.Button("Lead-in: masks + suffix")
                            infill = gr.Button("Infill: prefix + masks + suffix")
                        with gr.Row():
                            template = gr.Textbox(label="Template", value="Once upon a time [[6]] un[[3]] forest.",
                                                  info=TEMPLATE_INFO, scale=3, elem_id="template")
                            use_template = gr.Button("Template to canvas", scale=1, elem_id="use_template")
                    with gr.Accordion("Gap of unknown length: try every length, best first", open=False):
                        with gr.Row():
                            min_len = Slider(1, pipe.length, value=1, step=1, label="Shortest gap")
                            max_len = Slider(1, pipe.length, value=min(12, pipe.length), step=1,
                                             label=f"Longest gap (at most {MAX_GAP_LENGTHS} lengths)")
                            search = gr.Button("Search (uses the preset texts)", elem_id="gap_search")
                        fills = gr.Radio([], label="Fills, best first: choose one to put it in the canvas",
                                         elem_id="fills")
                        found = gr.State([], time_to_live=SESSION_SECONDS)
                with gr.Column(scale=1, min_width=240):
                    predictor = gr.Radio(list(pipe.predictors), value=pipe.predictors[0], label="Sampler",
                                         info=samplers_info(pipe.predictors))
                    steps = gr.Dropdown(list(STEPS), value=DEFAULT_STEPS, allow_custom_value=True, label="Steps",
                                        info=f"{', '.join(n for n in pipe.predictors if SAMPLERS[n].takes_steps)}: "
                                             f"log scale; any number from {STEP_RANGE[0]} to {STEP_RANGE[1]}")
                    seed = Number(0, precision=0, minimum=0, label="Seed", elem_id="seed")
                    batch = Slider(1, MAX_BATCH, value=1, step=1, label="Candidates (one batch; ranked)",
                                   elem_id="batch")
                    with gr.Accordion(EXACT_TITLE, open=False, elem_id="sampling") as accordion:
                        d, o = Controls(), options()  # the exact defaults
                        temperature = Slider(0, 2, value=d.temperature, step=0.05, label="Temperature",
                                             info="0: the argmax")
                        top_k = Slider(0, 200, value=d.top_k, step=1, label="Top-k", info="0: off")
                        top_p = Slider(0.05, 1, value=d.top_p, step=0.05, label="Top-p")
                        confidence = gr.Radio(list(MEASURES), value=o["confidence"],
                                              label="Confidence sampler: decide the surest slots by")
                        schedule = gr.Radio(list(SCHEDULES), value=o["schedule"], label="Confidence schedule")
                        remask = Slider(0, 0.5, value=o["remask"], step=0.01, label="Remask (analytic, Euler)",
                                        info=OPTION_INFO["remask"], elem_id="remask")
                        with gr.Row():
                            exact = gr.Button("Exact (the defaults)", size="sm", elem_id="exact")
                            sharper = gr.Button("Sharper: top-k 50", size="sm", elem_id="sharper")
                        gr.Markdown(SHARPER_INFO)
            panel = gr.HTML(css_template=CANDIDATES_CSS, js_on_load=CANDIDATES_JS, elem_id="candidates")
            with gr.Row():
                frame = Slider(0, 1, value=0, step=1, label="Scrub through the run (recorded frames)",
                               interactive=False, scale=3, elem_id="frame")
                shown = gr.Radio([1], value=1, label="Candidate in the canvas (best first)", interactive=False,
                                 scale=1, elem_id="shown")
            with gr.Row():
                runs = gr.Dropdown([], label="History: runs and branches", interactive=False, scale=3,
                                   elem_id="runs")
                branch = gr.Button("Branch from this frame (seed above)", scale=1, elem_id="branch")
            with gr.Row():
                heat = gr.Plot(label="When each slot was decided")
                left = gr.Plot(label="Masked slots against time")
            with gr.Accordion("Keep this run: JSON to replay, GIF to share", open=False):
                with gr.Row():
                    to_json = gr.Button("Export JSON")
                    to_gif = gr.Button("Export GIF")
                    exported = gr.File(label="Exported", interactive=False)
                    imported = gr.File(label="Import a run (.json)", file_types=[".json"])
            history = gr.State(None, time_to_live=SESSION_SECONDS)
        with gr.Tab("Score"):
            text = gr.Textbox(lines=4, label="Text to score", value="Once upon a time there was a river.")
            with gr.Row():
                points = Slider(8, 256, value=64, step=8, label="ELBO time points (quadrature)")
                score_seed = Number(0, precision=0, minimum=0, label="Seed")
                score_btn = gr.Button("Score", variant="primary")
            summary = gr.Markdown()
            tokens = gr.HTML(css_template=SCORE_CSS)
            bars = gr.Plot()
        if pipe.card:
            with gr.Accordion(f"Model card: {pipe.name}", open=False, elem_id="model-card"):
                gr.Markdown(pipe.card)

        model = dict(concurrency_limit=CONCURRENCY, concurrency_id="model")
        named = dict(canvas=canvas, panel=panel, status=status, heat=heat, left=left, history=history, frame=frame,
                     shown=shown, runs=runs)
        view = [named[name] for name in View._fields]  # the outputs by name (events.View)
        # No status overlay on the canvas and the view: the canvas and the status line show progress, an
        # error is a toast and leaves every control usable and every output as it was.
        quiet = dict(show_progress="hidden")
        edited = dict(fn=None, inputs=[status, panel], outputs=[status, panel], js=MARK_EDITED)
        for button, kind in ((cont, "continue"), (lead, "lead_in"), (infill, "infill")):
            button.click(partial(ed.preset, kind), [before, after, gap], canvas, api_name=f"preset_{kind}",
                         **quiet).success(**edited)
        use_template.click(ed.template, template, canvas, api_name="preset_template", **quiet).success(**edited)
        canvas.add_text(ed.add_text, canvas, canvas, api_visibility="private", **quiet).success(**edited)
        canvas.input(**edited)  # a change made on the canvas itself, undo and redo included
        sampling = [temperature, top_k, top_p, confidence, schedule, remask]
        follows = dict(fn=ed.sampler_controls, inputs=predictor, outputs=[steps, remask, confidence, schedule],
                       api_visibility="private", **quiet)
        predictor.change(**follows)
        demo.load(**follows)
        exact.click(lambda: [*sampling_values(), gr.Accordion(label=EXACT_TITLE)], None, [*sampling, accordion],
                    api_visibility="private")
        sharper.click(lambda: [*sampling_values(**SHARPER), gr.Accordion(label=SHARPER_TITLE)], None,
                      [*sampling, accordion], api_visibility="private")
        running = gen.click(None, None, gen, js=RUNNING).then(
            on_gpu(ed.generate, generate_seconds(time_limit)),
            [canvas, predictor, steps, seed, batch, *sampling, history], view, api_name="generate", **model, **quiet)
        for ended in (running.then, running.failure):  # a stopped run triggers both
            ended(None, None, gen, js=READY)
        branching = branch.click(on_gpu(ed.branch, branch_seconds(time_limit)), [canvas, history, frame, shown, seed],
                                 view, api_name="branch", **model, **quiet)
        stop.click(None, cancels=[running, branching])  # the run's /cancel, through the guard's door
        stop.click(ed.stop, history, view, api_visibility="private", **quiet)  # what it had done, recorded and shown
        scrub = dict(fn=ed.scrub, inputs=[history, frame, shown], outputs=view[:4], **quiet)
        frame.input(**scrub, api_name="scrub")
        shown.input(**scrub, api_visibility="private")
        runs.input(ed.pick_run, [history, runs], view, api_name="pick_run", **quiet)
        search.click(on_gpu(ed.gap_choices, gap_search_seconds(time_limit, MAX_GAP_LENGTHS)),
                     [before, after, min_len, max_len, seed, predictor, steps, *sampling], [fills, found],
                     api_visibility="private", **model)
        fills.input(ed.use_gap, [fills, found, before, after], canvas, api_visibility="private",
                    **quiet).success(**edited)
        gr.api(on_gpu(ed.rank, rank_seconds(time_limit, RANK_POINTS)), api_name="rank", **model)
        gr.api(on_gpu(ed.gap_search, gap_search_seconds(time_limit, MAX_GAP_LENGTHS)), api_name="gap_search", **model)
        to_json.click(ed.export_json, history, exported, api_name="export")
        to_gif.click(ed.export_gif, [history, shown], exported, api_name="export_gif")
        controls = dict(predictor=predictor, steps=steps, seed=seed, candidates=batch, temperature=temperature,
                        top_k=top_k, top_p=top_p, confidence=confidence, schedule=schedule, remask=remask)
        imported.upload(ed.import_run, [imported, history], view + [controls[name] for name in SETTINGS],
                        api_name="import", **quiet)
        score_btn.click(on_gpu(ed.score, score_seconds(time_limit)), [text, points, score_seed], [summary, tokens, bars],
                        api_name="score", **model)
    return demo
