"""The page: `build_demo(pipeline) -> gr.Blocks`, with the Editor and Score tabs wired to `events.Editor`.

Stable api_names: preset_continue, preset_lead_in, preset_infill, generate, scrub, score
(add_text is the canvas's own event and is not part of the API).
"""
from functools import partial

import gradio as gr

from .candidates import CSS as CANDIDATES_CSS
from .canvas import Canvas
from .events import MAX_CANDIDATES, STEPS, TIME_LIMIT, Editor
from .score import CSS as SCORE_CSS
from .slots import preset

CONCURRENCY = 2  # sampler and score runs at once (shared); the rest wait in the queue
INTRO = """# SEDD infill editor
Score Entropy Discrete Diffusion writes every slot at once, so any tokens can be held fixed anywhere.
**Click** a chip to fix (dark) or free (dashed) it, **shift-click** to give a range the same state,
click **between** chips to move the caret, then type text or insert a masked gap there.
Keys on the canvas: arrows move the caret (Shift selects), Space toggles, f fixes, u frees, g inserts a gap,
Backspace/Delete delete. Generated tokens are coloured by the step at which the sampler decided them."""


class Slider(gr.Slider):
    """A slider whose value reaches the handler as sent (the page keeps it in range; an API caller may
    send anything): the handler checks it and says what is wrong, where Gradio's own check would not."""

    def preprocess(self, payload):
        return payload


class Number(gr.Number):
    """A number field that, like `Slider`, leaves the checking to the handler."""

    def preprocess(self, payload):
        return payload


SAMPLERS_INFO = ("first_hitting: exact, one network call per free slot, no steps; "
                 "analytic / Euler: tau-leaping in the given number of steps")


def starting_canvas(pipe):
    """An infill example that fits the model, or an empty canvas when it does not."""
    before, after = "Once upon a time", " happily ever after."
    room = pipe.length - len(pipe.tokenizer.encode(before)) - len(pipe.tokenizer.encode(after))
    return preset(pipe, "infill", before, after, min(16, room)) if room >= 1 else []


def serve(pipe, time_limit: float = TIME_LIMIT, **launch) -> gr.Blocks:
    """Build the page, queue it and launch it (`launch`: gr.Blocks.launch's arguments). Every refused
    request answers with its message, Gradio's own input checks included (show_error)."""
    demo = build_demo(pipe, time_limit)
    demo.queue(max_size=64).launch(show_error=True, **launch)
    return demo


def build_demo(pipe, time_limit: float = TIME_LIMIT) -> gr.Blocks:
    ed = Editor(pipe, time_limit)
    with gr.Blocks(title="SEDD infill editor") as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Editor"):
            with gr.Row():
                with gr.Column(scale=3):
                    canvas = Canvas(pipe.length, value=starting_canvas(pipe), elem_id="canvas")
                    with gr.Accordion("Presets: continue, lead-in, infill", open=False):
                        with gr.Row():
                            before = gr.Textbox(label="Text before (prefix)", value="Once upon a time")
                            after = gr.Textbox(label="Text after (suffix)", value=" happily ever after.")
                            gap = Slider(1, pipe.length, value=min(16, pipe.length), step=1,
                                            label="Masked slots")
                        with gr.Row():
                            cont = gr.Button("Continue: prefix + masks")
                            lead = gr.Button("Lead-in: masks + suffix")
                            infill = gr.Button("Infill: prefix + masks + suffix")
                with gr.Column(scale=1, min_width=240):
                    predictor = gr.Radio(list(pipe.predictors), value=pipe.predictors[0], label="Sampler",
                                         info=SAMPLERS_INFO if pipe.predictors[0] == "first_hitting" else None)
                    steps = gr.Dropdown(list(STEPS), value=128, allow_custom_value=True, label="Steps",
                                        info="analytic and Euler: log scale, 8 to 1024; type any number in between")
                    seed = Number(0, precision=0, minimum=0, label="Seed")
                    batch = Slider(1, MAX_CANDIDATES, value=1, step=1, label="Candidates (one batch)")
                    with gr.Row():
                        gen = gr.Button("Generate", variant="primary", elem_id="generate")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
            status = gr.Markdown(elem_id="status")
            panel = gr.HTML(css_template=CANDIDATES_CSS, elem_id="candidates")
            with gr.Row():
                frame = Slider(0, 1, value=0, step=1, label="Scrub through the run (recorded frames)",
                                  interactive=False, scale=3)
                shown = gr.Radio([1], value=1, label="Candidate in the canvas", interactive=False, scale=1)
            with gr.Row():
                heat = gr.Plot(label="When each slot was decided")
                left = gr.Plot(label="Masked slots against time")
            run = gr.State(None)
        with gr.Tab("Score"):
            text = gr.Textbox(lines=4, label="Text to score", value="Once upon a time there was a river.")
            with gr.Row():
                points = Slider(8, 256, value=64, step=8, label="ELBO time points (quadrature)")
                score_seed = Number(0, precision=0, minimum=0, label="Seed")
                score_btn = gr.Button("Score", variant="primary")
            summary = gr.Markdown()
            tokens = gr.HTML(css_template=SCORE_CSS)
            bars = gr.Plot()

        for button, kind in ((cont, "continue"), (lead, "lead_in"), (infill, "infill")):
            button.click(partial(ed.preset, kind), [before, after, gap], canvas, api_name=f"preset_{kind}")
        canvas.add_text(ed.add_text, canvas, canvas, api_visibility="private")
        running = gen.click(ed.generate, [canvas, predictor, steps, seed, batch],
                           [canvas, panel, status, heat, left, run, frame, shown], api_name="generate",
                           concurrency_limit=CONCURRENCY, concurrency_id="model")
        stop.click(None, cancels=[running])
        scrub = dict(fn=ed.scrub, inputs=[run, frame, shown], outputs=[canvas, panel, status, heat])
        frame.input(**scrub, api_name="scrub")
        shown.input(**scrub, api_visibility="private")
        score_btn.click(ed.score, [text, points, score_seed], [summary, tokens, bars], api_name="score",
                        concurrency_limit=CONCURRENCY, concurrency_id="model")
    return demo
