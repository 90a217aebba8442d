"""The sampler registry is the one place a sampler is known: a fifth, trivial sampler added here (its
function and one registry entry, nothing else) is offered by the pipeline, the editor's page, the CLI,
`evaluate quality` and the GPU-time estimate, and its facts drive the page's words."""
import gradio as gr
import pytest
import torch

from app.events import Editor
from app.ui import build_demo
from app.zerogpu import sampling_seconds
from sedd_core.samplers import SAMPLERS, Sampler
from sedd_core.cli import main as cli
from evaluation.quality import Spec
from evaluation.quality import draw, plan


def all_at_once(ctx, x, t_start, steps):
    """One call: every open slot drawn from the model's conditional at t_start (not exact)."""
    now = ctx.open(x)
    yield ctx.state(0, 1, torch.full((len(x),), t_start, dtype=torch.float64), x, torch.zeros_like(now), now)
    w, _ = ctx.scorer(x, ctx.noise.total(torch.full((len(x),), t_start, dtype=torch.float64)), now)
    x = x.masked_scatter(now, ctx.drawer(now)(w[:, :ctx.graph.tokens], slice(None)))
    yield ctx.state(1, 1, torch.zeros(len(x), dtype=torch.float64), x, now, torch.zeros_like(now))


ONE = Sampler("all_at_once", all_at_once, "every slot in one call", exact=False, absorbing_only=True,
              takes_steps=False, calls=lambda steps, free: 1)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(SAMPLERS, ONE.name, ONE)


def test_a_new_sampler_is_offered_everywhere(registered, tiny_pipe, tiny_model_dir, capsys):
    assert "all_at_once" in tiny_pipe.predictors
    ids, fixed, _ = tiny_pipe.template("The [[5]] sea.")
    state = list(tiny_pipe.stream(ids, fixed, predictor="all_at_once"))[-1]
    assert state.calls == 1 and not state.open.any()
    # the page: a choice of the sampler radio, with its help and the "not exact" mark from its entry
    demo = build_demo(tiny_pipe)
    radio = next(b for b in demo.blocks.values() if isinstance(b, gr.Radio) and b.label == "Sampler")
    assert ("all_at_once", "all_at_once") in radio.choices and "all_at_once: every slot in one call (not exact)" in radio.info
    # the editor's handlers and its status line
    ed = Editor(tiny_pipe)
    canvas = [{"id": None, "text": "", "fixed": False}] * 4
    out = list(ed.generate(canvas, "all_at_once", 8, 0, 1))[-1]
    assert "all_at_once (not exact)" in out[2] and "steps" not in out[2].split("·")[0]
    # the CLI
    cli(["--model", str(tiny_model_dir), "--predictor", "all_at_once", "--length", "8", "--precision", "fp32"])
    assert "=== sample 0 ===" in capsys.readouterr().out
    # evaluate quality: planned once (it takes no steps), drawn, and not marked exact
    specs = [s for s in plan(tiny_pipe.predictors, [4, 8]) if s.predictor == "all_at_once"]
    assert specs == [Spec("all_at_once", None, {})] and not specs[0].exact
    samples, calls, _ = draw(tiny_pipe, specs[0], 3, 8, 3, 0)
    assert samples.shape == (3, 8) and calls == 1
    # the GPU-time estimate: its own count of calls
    assert sampling_seconds(canvas, "all_at_once", 1024, 1, 60.0) < sampling_seconds(canvas, "analytic", 1024, 1, 60.0)


def test_an_unknown_sampler_is_named_with_the_choices(tiny_pipe):
    ids, fixed, _ = tiny_pipe.template("The [[5]] sea.")
    with pytest.raises(ValueError, match="unknown sampler 'nope': choose one of first_hitting, analytic, euler, confidence"):
        tiny_pipe.stream(ids, fixed, predictor="nope")


def test_settings_are_checked_when_made_and_the_rest_when_sample_iter_is_called(tiny_pipe):
    from sedd_core import Fixed, Settings, Start, sample_iter
    with pytest.raises(ValueError, match="per_call must be at least 1"):
        Settings("first_hitting", options={"per_call": 0})
    with pytest.raises(ValueError, match="per_call does not apply to the analytic sampler: it is an option of first_hitting"):
        Settings("analytic", options={"per_call": 2})
    with pytest.raises(ValueError, match="the start must be"):  # raised by the call, before any state is asked for
        sample_iter(tiny_pipe.scorer, tiny_pipe.graph, tiny_pipe.noise, (1, 4), start=Start(torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="slot 2 is fixed but holds no valid token id"):
        sample_iter(tiny_pipe.scorer, tiny_pipe.graph, tiny_pipe.noise, (1, 2), Settings(),
                    Fixed(torch.tensor([[0, 10**6]]), torch.tensor([[False, True]])))


def test_the_page_enables_only_the_controls_a_sampler_reads():
    """Steps, remask, the confidence measure and schedule follow the chosen sampler's registry entry."""
    from app.events import Editor
    steps, remask, measure, schedule = Editor.sampler_controls("first_hitting")
    assert steps["interactive"] is False and "takes no steps" in steps["info"]
    assert remask["interactive"] is False and "does not apply to first_hitting" in remask["info"]
    assert (remask["value"], measure["value"], schedule["value"]) == (0.0, "max", "linear")  # never sent as set
    steps, remask, measure, schedule = Editor.sampler_controls("analytic")
    assert steps["interactive"] and remask["interactive"] and not measure["interactive"]
    steps, remask, measure, schedule = Editor.sampler_controls("confidence")
    assert steps["interactive"] and not remask["interactive"] and measure["interactive"] and schedule["interactive"]


@pytest.mark.parametrize("sampler", ["first_hitting", "analytic", "confidence"])
def test_a_generate_click_reaches_the_network_through_six_files(tiny_pipe, monkeypatch, sampler):
    """The project files on the call stack when a Generate run calls the DDiT's forward are six: the
    handler, the recorder that drains the stream, the sampler's own file, the shared base (Scorer), the
    pipeline (its Network: precision and deadline) and the model. (Following the sampler's name by
    reading, samplers/__init__.py, where sample_iter looks it up, takes app/run.py's place.)"""
    import inspect
    from pathlib import Path

    from sedd_core.model import DDiT

    root = Path(__file__).resolve().parent.parent
    seen, forward = set(), DDiT.forward

    def traced(self, *args, **kwargs):
        files = [Path(f.filename).resolve() for f in inspect.stack()]
        seen.update(f.relative_to(root).as_posix() for f in files if f.is_relative_to(root) and
                    f.relative_to(root).parts[0] in ("app", "sedd_core", "training", "evaluation"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(DDiT, "forward", traced)
    canvas = [{"id": 5, "text": "a", "fixed": True}] + [{"id": None, "text": "", "fixed": False}] * 3
    list(Editor(tiny_pipe).generate(canvas, sampler, 8, 0, 1))
    own = "sedd_core/samplers/" + SAMPLERS[sampler].run.__module__.rsplit(".", 1)[1] + ".py"
    # the files above the forward (the sixth, model.py, holds the forward this test replaced)
    assert seen == {"app/events.py", "app/run.py", own, "sedd_core/samplers/base.py", "sedd_core/pipeline.py"}
