"""Imports a hostile visitor crafts: each is refused with one plain sentence and leaves the session
working (scrub, branch, generate), or is accepted whole; the file size and the history are capped."""
import copy
import json
from dataclasses import asdict

import gradio as gr
import pytest

from app.events import Editor
from app.export import max_file_bytes
from app.run import MAX_RUNS, History

EXACT = dict(temperature=1.0, top_k=0, top_p=1.0, confidence="max", schedule="linear", remask=0.0)


def canvas(pipe):
    ids = pipe.tokenizer.encode("The river ran")
    pieces = pipe.tokenizer.pieces(ids)
    return ([{"id": i, "text": p, "fixed": True} for i, p in zip(ids, pieces)]
            + [{"id": None, "text": "", "fixed": False}] * 6)


def last(outputs):
    out = None
    for out in outputs:
        pass
    return out


@pytest.fixture(scope="module")
def exported(tiny_pipe):
    """A real export: two candidates, analytic at 8 steps, ranked."""
    ed = Editor(tiny_pipe)
    history = last(ed.generate(canvas(tiny_pipe), "analytic", 8, 3, 2, **EXACT))[5]
    return json.loads(open(ed.export_json(history)).read())


def drop(*path):
    def change(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


def put(value, *path):
    def change(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


CRAFTED = {  # what a hostile pass sent (issue 20), each as a change to a real export
    "no predictor": drop("settings", "predictor"),
    "the first format": put("sedd-run/1", "format"),
    "no seed": drop("settings", "seed"),
    "settings as text": put("x", "settings"),
    "an unknown sampler": put("ddpm", "settings", "predictor"),
    "64 candidates": put(64, "settings", "candidates"),
    "5000 steps": put(5000, "settings", "steps"),
    "a negative seed": put(-1, "settings", "seed"),
    "a bad control": put(-1, "settings", "controls", "top_k"),
    "allowed tokens": put({"0": [True]}, "settings", "controls", "allowed"),
    "an unknown control": put(1, "settings", "controls", "warp"),
    "another sampler's option": put(2, "settings", "options", "per_call"),
    "a bad option": put(2.0, "settings", "options", "remask"),
    "a control among the options": put(0.5, "settings", "options", "temperature"),
    "token 4097": lambda d: d["frames"][0]["tokens"][0].__setitem__(0, 4097),
    "token 2^31": lambda d: d["frames"][0]["tokens"][0].__setitem__(0, 2**31),
    "token 1.5": lambda d: d["frames"][0]["tokens"][0].__setitem__(0, 1.5),
    'token "7"': lambda d: d["frames"][0]["tokens"][0].__setitem__(0, "7"),
    "token true": lambda d: d["frames"][0]["tokens"][0].__setitem__(0, True),
    "a short row": lambda d: d["frames"][0]["tokens"][0].pop(),
    "decided past the end": lambda d: d["frames"][0]["decided"][0].__setitem__(0, 10**6),
    "frames out of order": lambda d: d["frames"].reverse(),
    "no frames": put([], "frames"),
    "a frame as text": lambda d: d["frames"].__setitem__(0, "frame"),
    "too many frames": lambda d: d["frames"].extend(copy.deepcopy(d["frames"][-1:]) * 70),
    "times NaN": lambda d: d["times"][0].__setitem__(0, float("nan")),
    "counts too short": lambda d: d["counts"].pop(),
    "ranking index 9": lambda d: d["ranking"][0].__setitem__("index", 9),
    "ranking twice": lambda d: d["ranking"].__setitem__(1, d["ranking"][0]),
    "ranking as text": put("best", "ranking"),
    "start as text": put("slots", "start"),
    "start all fixed": lambda d: d.__setitem__("start", [s | {"fixed": True, "id": 1} for s in d["start"]]),
    "a start slot with id true": lambda d: d["start"][0].__setitem__("id", True),
    "an extra key": put(1, "extra"),
    "last 1.5": put(1.5, "last"),
    "parent without at_frame": put(0, "parent"),
    "another model": put({"name": "x", "config_sha256": "0"}, "model"),
    "another format": put("sedd-run/0", "format"),
    "a list": lambda d: d.clear(),
}


def write(tmp_path, data, name="run.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def still_works(ed, pipe, history):
    """Scrub, branch and generate in the session that the refused import left."""
    ed.scrub(history, 1, 1)
    last(ed.branch(history.run.start, history, 1, 1, 7))
    return last(ed.generate(canvas(pipe), "first_hitting", 8, 0, 1, **EXACT, history=history))[5]


@pytest.mark.parametrize("name", CRAFTED)
def test_a_crafted_import_is_refused_in_one_sentence_and_the_session_goes_on(tiny_pipe, exported, tmp_path, name):
    ed = Editor(tiny_pipe)
    history = last(ed.generate(canvas(tiny_pipe), "analytic", 8, 0, 1, **EXACT))[5]
    data = copy.deepcopy(exported)
    if name == "a list":
        data = [1, 2]
    else:
        CRAFTED[name](data)
    runs = list(history.runs)
    with pytest.raises(gr.Error) as err:
        ed.import_run(write(tmp_path, data), history)
    message = err.value.message
    assert "\n" not in message and len(message) < 400 and "Traceback" not in message, message
    assert message.startswith(("The run file is damaged", "This is not an exported run", "This run was made",
                               "This run was exported by another version")), message
    assert history.runs == runs  # nothing was added
    assert len(still_works(ed, tiny_pipe, history).runs) == len(runs) + 2


def test_unparseable_files_are_refused(tiny_pipe, tmp_path):
    ed = Editor(tiny_pipe)
    for text in ["[" * 100_000 + "]" * 100_000, "{", "\xff\xfe", ""]:
        with pytest.raises(gr.Error, match="not an exported run"):
            ed.import_run(write(tmp_path, text), None)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (ed.max_import_bytes + 1))
    with pytest.raises(gr.Error, match="larger than any run this editor exports"):
        ed.import_run(str(big), None)


def test_the_size_cap_holds_the_largest_export(tiny_pipe):
    """The cap is not a guess: a run of the editor's largest shape exports below it."""
    from app.run import MAX_FRAMES
    from sedd_core.checks import MAX_BATCH
    L, B, F = tiny_pipe.length, MAX_BATCH, MAX_FRAMES + 1
    frame = {"step": 1024, "tokens": [[tiny_pipe.graph.dim - 1] * L] * B, "decided": [[1024] * L] * B, "calls": 10**6}
    worst = {"frames": [frame] * F, "counts": [[L] * B] * 1026, "times": [[0.123456789012345] * B] * 1026,
             "start": [{"id": None, "text": "", "fixed": False}] * L}
    assert len(json.dumps(worst)) < max_file_bytes(L, B, F)


def test_single_frame_and_well_formed_runs_are_accepted_whole(tiny_pipe, exported, tmp_path):
    ed = Editor(tiny_pipe)
    out = ed.import_run(write(tmp_path, exported), None)
    run, settings = out[5].run, exported["settings"]
    assert (run.settings.predictor, run.settings.steps, run.seed, run.candidates) == tuple(
        settings[k] for k in ("predictor", "steps", "seed", "candidates"))
    assert asdict(run.settings.controls) == settings["controls"] and run.settings.options == settings["options"]
    one = copy.deepcopy(exported)
    one["frames"] = one["frames"][-1:]
    out = ed.import_run(write(tmp_path, one), out[5])
    assert len(out[5].runs) == 2 and out[6].maximum >= out[6].value == 0
    ed.scrub(out[5], 0, 2)  # its one frame, either candidate
    still_works(ed, tiny_pipe, ed.pick_run(out[5], 0)[5])


def test_the_history_keeps_the_newest_runs(tiny_pipe):
    ed = Editor(tiny_pipe)
    history = History()
    for seed in range(MAX_RUNS + 3):
        history = last(ed.generate(canvas(tiny_pipe), "first_hitting", 8, seed, 1, **EXACT, history=history))[5]
    assert len(history.runs) == MAX_RUNS and history.run.seed == MAX_RUNS + 2
    assert [label for label, _ in history.labels()][0].startswith("1: run")


def rss_mib() -> float:
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024


def test_repeated_imports_and_exports_stay_bounded_on_disk_and_in_memory(tiny_pipe, exported, tmp_path):
    from app.events import KEEP_EXPORTS
    ed, history, sizes = Editor(tiny_pipe), None, []
    path = write(tmp_path, exported)
    for n in range(60):
        history = ed.import_run(path, history)[5]
        ed.export_json(history)
        ed.export_gif(history, 1)
        if n in (19, 59):
            sizes.append(rss_mib())
    assert len(history.runs) == MAX_RUNS
    assert len(list(ed.exports.iterdir())) == KEEP_EXPORTS  # older export files are deleted
    assert sizes[1] - sizes[0] < 40, sizes  # 40 more imports and 80 more exports hold no more memory


def test_the_gif_breaks_lines_where_the_text_does(tiny_pipe):
    """A token's newline is a line break in the GIF (not a missing-glyph box), at a readable size."""
    from PIL import Image

    def gif_of(text):
        ed = Editor(tiny_pipe)
        ids = tiny_pipe.encode(text)
        slots = [{"id": i, "text": p, "fixed": True} for i, p in zip(ids, tiny_pipe.pieces(ids))]
        history = last(ed.generate(slots + [{"id": None, "text": "", "fixed": False}] * 2, "first_hitting", 8, 0, 1,
                                   **EXACT))[5]
        return Image.open(ed.export_gif(history, 1))
    flat, broken = gif_of("a b"), gif_of("a\n\nb")
    assert flat.width == broken.width == 960 and broken.height > flat.height


def test_a_stopped_run_is_recorded_as_far_as_it_went(tiny_pipe, tmp_path):
    """Stop (issue 21, item 4): the run in the history, shown at its last frame, saying it stopped; the
    stream, resumed after the stop, adds nothing; the stopped run scrubs, branches, exports and imports."""
    ed = Editor(tiny_pipe)
    history = last(ed.generate(canvas(tiny_pipe), "first_hitting", 8, 0, 1, **EXACT))[5]
    stream = ed.generate(canvas(tiny_pipe), "analytic", 64, 1, 3, **EXACT, history=history)
    views = [next(stream) for _ in range(5)]
    assert views[0].history is history and history.running is not None  # the page's state holds the running run
    out = ed.stop(history)
    run = history.run
    assert len(history.runs) == 2 and history.running is None
    assert out.status.startswith(f"Stopped at step {run.last} of 65, recorded as far as it went")
    assert 0 < run.last < 65 and run.frames[-1].step == run.last and len(run.counts) == len(run.times) == run.last + 1
    assert out.frame.value == len(run.frames) - 1 and run.seed == 1 and run.candidates == 3 and not run.ranking
    assert history.labels()[1][0].startswith(f"2: stopped at step {run.last} of 65 · analytic, 64 steps · seed 1")
    assert list(stream) == [] and len(history.runs) == 2  # the cancelled stream records nothing more
    ed.scrub(history, 0, 2)
    data = json.loads(open(ed.export_json(history)).read())
    imported = ed.import_run(write(tmp_path, data), history)[5]
    assert imported.run.last == run.last and imported.run.frames[-1].step == run.last
    branched = last(ed.branch(run.start, history, 1, 2, 9))[5]
    assert branched.run.parent == 1 and not any(map(tiny_pipe.is_mask, branched.run.frames[-1].tokens[0].tolist()))
    assert ed.stop(History()).status == "Stopped: nothing of that run was kept."
