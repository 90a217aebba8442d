"""app/zerogpu.py with a stand-in `spaces` module: durations and calls reach spaces.GPU, generator
handlers keep streaming, and without `spaces` the handlers are left as they are."""
import inspect
import math
import sys
import types
from functools import wraps

import pytest

from app.zerogpu import (PER_ROW, START, branch_seconds, gap_search_seconds, generate_seconds, on_gpu,
                         rank_seconds, score_seconds)
from sedd_core.samplers import Settings


def stand_in(keeps_generators=True):
    """A `spaces` module whose GPU(task, duration=...) records, per call, the seconds asked for (a
    callable duration is called with the handler's inputs, as spaces.GPU does) and the inputs. Like
    spaces.GPU it wraps a generator function in a generator function, unless `keeps_generators` is false
    (a wrapper that returns the generator)."""
    module = types.ModuleType("spaces")
    module.calls = []

    def GPU(task, *, duration=None):
        def asked(args, kwargs):
            module.calls.append((duration(*args, **kwargs) if callable(duration) else duration, args, kwargs))

        if keeps_generators and inspect.isgeneratorfunction(task):
            @wraps(task)
            def streamed(*args, **kwargs):
                asked(args, kwargs)
                yield from task(*args, **kwargs)
            return streamed

        @wraps(task)
        def called(*args, **kwargs):
            asked(args, kwargs)
            return task(*args, **kwargs)
        return called
    module.GPU = GPU
    return module


class Handlers:
    """Bound methods, as the editor's handlers are; `made` counts the frames produced so far."""

    made = 0

    def score(self, text, points, seed):
        return f"{text}:{points}:{seed}"

    def generate(self, slots, predictor, steps, seed, candidates):
        for n in range(3):
            self.made += 1
            yield n


@pytest.mark.parametrize("keeps_generators", [True, False])
def test_with_spaces_handlers_run_under_gpu_and_keep_streaming(monkeypatch, keeps_generators):
    spaces = stand_in(keeps_generators)
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    h = Handlers()
    score = on_gpu(h.score, 30)
    assert spaces.calls == []
    assert score("a", 64, seed=1) == "a:64:1"
    assert spaces.calls == [(30, ("a", 64), {"seed": 1})]  # the call went through spaces.GPU, with its duration
    generate = on_gpu(h.generate, lambda slots, predictor, steps, seed, candidates: steps + 1)
    assert inspect.isgeneratorfunction(generate)
    assert inspect.signature(generate) == inspect.signature(h.generate)  # what Gradio matches inputs to
    frames = generate([], "analytic", 128, 0, 2)
    assert next(frames) == 0 and h.made == 1  # one frame at a time: it streams
    assert list(frames) == [1, 2] and h.made == 3
    assert spaces.calls[1] == (129, ([], "analytic", 128, 0, 2), {})


def test_without_spaces_the_handlers_are_unchanged(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError
    h = Handlers()
    score, generate = h.score, h.generate
    assert on_gpu(score, 30) is score and on_gpu(generate, generate_seconds(60)) is generate


def test_durations_fit_the_request():
    generate, rank, score = generate_seconds(60), rank_seconds(60, points=16), score_seconds(60)
    canvas = [{"id": 1, "text": "a", "fixed": True}] + [{"id": None, "text": "", "fixed": False}] * 3
    assert generate(canvas, "first_hitting", 128, 0, 2) == math.ceil(START + PER_ROW * 3 * 2)
    assert generate(canvas, "analytic", "128", 0, 1, 0.8, 40, history=None) == math.ceil(START + PER_ROW * 129)
    assert generate(canvas, "euler", 1024, 0, 4) == START + 60  # capped by the time limit
    assert rank(canvas, "first_hitting", 128, 0, 2) == math.ceil(START + PER_ROW * 2 * (3 + 1.25 * 16))
    for bad in [(None, "first_hitting", 8, 0, 1), (["x"], "first_hitting", 8, 0, 1),
                (canvas, "analytic", "many", 0, 1), (canvas, "euler", 8, 0, "inf")]:
        assert generate(*bad) == rank(*bad) == START + 60  # the most; the handler then says what is wrong
    assert score("text", 64, 0) == math.ceil(START + PER_ROW * 80) and score("text", None, 0) == START + 60


def test_branch_and_gap_search_durations():
    branch, gaps = branch_seconds(60), gap_search_seconds(60, most=32)
    canvas = [{"id": 7, "text": "b", "fixed": False}] * 2 + [{"id": None, "text": "", "fixed": False}] * 2
    history = types.SimpleNamespace(run=types.SimpleNamespace(settings=Settings("first_hitting", 128), candidates=3))
    assert branch(canvas, history, 5, 1, 0) == math.ceil(START + PER_ROW * 4 * 3)
    assert branch(canvas, None, 5, 1, 0) == START + 60  # nothing to branch from: the handler says so
    assert gaps("Once", "after.", 2, 4, 0) == math.ceil(START + PER_ROW * 2 * (2 + 3 + 4 + 3 * 40))
    assert gaps("Once", "after.", 1, 10**9, 0) == START + 60 and gaps("a", "b", "x", 4, 0) == START + 60
