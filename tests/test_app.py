"""The editor end to end: the app runs in-process on a free port and is driven through gradio_client."""
import json
import subprocess
import sys
from pathlib import Path

import re

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pipe(tiny_pipe):
    return tiny_pipe


@pytest.fixture
def client(editor_url):
    return Client(editor_url, verbose=False, download_files=False)


EXACT = [1.0, 0, 1.0, "max", "linear", 0.0]  # /generate's sampling controls at their exact defaults


def fixed(pipe, text):
    return [{"id": i, "text": p, "fixed": True} for i, p in zip(pipe.tokenizer.encode(text), pipe.tokenizer.pieces(
        pipe.tokenizer.encode(text)))]


def gap(n):
    return [{"id": None, "text": "", "fixed": False} for _ in range(n)]


def scattered(pipe):
    """Fixed tokens at the start, in the middle (twice) and at the end, with masked gaps between."""
    return fixed(pipe, "The") + gap(3) + fixed(pipe, " fox") + gap(2) + fixed(pipe, " a") + gap(4) + fixed(pipe, ".")


def assert_fixed_kept(start, canvas):
    assert len(canvas) == len(start)
    for n, (a, b) in enumerate(zip(start, canvas)):
        if a["fixed"]:
            assert b["fixed"] and b["id"] == a["id"], f"fixed slot {n} moved or changed: {a} -> {b}"
        else:
            assert not b["fixed"] and b["id"] is not None, f"free slot {n} was not generated: {b}"


def test_generate_keeps_fixed_tokens_where_they_were_put(pipe, client):
    start = scattered(pipe)
    canvas, panel, status, heat, masks, frame, shown, runs = client.predict(
        start, "analytic", 16, 3, 2, *EXACT, api_name="/generate")
    assert_fixed_kept(start, canvas)
    assert status.startswith("Done") and len(re.findall(r'class="sedd-cand[ "]', panel)) == 2  # one per candidate
    assert heat["type"] == "plotly" and masks["type"] == "plotly"
    second, second_panel = client.predict(frame["value"], 2, api_name="/scrub")[:2]  # the other candidate
    assert_fixed_kept(start, second)
    assert second_panel.index("sedd-cand shown") > second_panel.index("candidate 1<")  # it highlights candidate 2
    assert [s["id"] for s in second] != [s["id"] for s in canvas]  # a different sample of the free slots
    with pytest.raises(AppError, match=re.escape("3 (type: <class 'int'>) is not in the list of choices: [1, 2]")):
        client.predict(frame["value"], 3, api_name="/scrub")
    first_frame = client.predict(0, 1, api_name="/scrub")[0]  # scrubbing back to the start: all masked
    assert [s["id"] for s in first_frame if not s["fixed"]] == [None] * sum(not s["fixed"] for s in start)


def test_euler_and_several_candidates(pipe, client):
    start = scattered(pipe)
    canvas = client.predict(start, "euler", 8, 0, 4, *EXACT, api_name="/generate")[0]
    assert_fixed_kept(start, canvas)


def test_streaming_yields_intermediate_states(pipe, client):
    start = scattered(pipe)
    job = client.submit(start, "analytic", 64, 1, 1, *EXACT, api_name="/generate")
    canvases = [json.dumps(out[0]) for out in job]
    final = job.result()[0]
    assert json.dumps(final) == canvases[-1]
    distinct = list(dict.fromkeys(canvases[:-1]))
    assert len(distinct) >= 3, f"only {len(distinct)} distinct intermediate canvases"
    masked = [sum(s["id"] is None for s in json.loads(c)) for c in canvases]
    assert masked[0] == sum(not s["fixed"] for s in start) and masked[-1] == 0
    assert masked == sorted(masked, reverse=True)  # absorbing graph: a decided slot stays decided
    for c in canvases:
        assert all(b["fixed"] and b["id"] == a["id"] for a, b in zip(start, json.loads(c)) if a["fixed"])


def test_first_hitting_streams_one_decision_per_network_call(pipe, client):
    start = scattered(pipe)  # 9 free slots
    outs = list(client.submit(start, "first_hitting", 128, 0, 2, *EXACT, api_name="/generate"))
    masked = [sum(s["id"] is None for s in out[0]) for out in outs]
    assert masked == list(range(9, -1, -1))  # every state streamed: one slot decided per call
    canvas, panel, status, heat, left = outs[-1][:5]
    assert_fixed_kept(start, canvas)
    assert status.startswith("Done") and "(first_hitting)" in status and "9 network calls" in status
    assert heat["type"] == "plotly" and left["type"] == "plotly"
    frame = outs[-1][5]["value"]
    steps = [s.get("step") for s in client.predict(frame, 2, api_name="/scrub")[0] if not s["fixed"]]
    assert sorted(steps) == list(range(1, 10))  # candidate 2 too: each slot decided at its own call


def test_presets(pipe, client):
    head, tail = fixed(pipe, "The"), fixed(pipe, " end.")
    assert client.predict("The", " end.", 5, api_name="/preset_continue") == head + gap(5)
    assert client.predict("The", " end.", 5, api_name="/preset_lead_in") == gap(5) + tail
    assert client.predict("The", " end.", 5, api_name="/preset_infill") == head + gap(5) + tail


def test_score(client):
    summary, tokens, bars = client.predict("The quick brown fox.", 16, 0, api_name="/score")
    assert "Perplexity bound" in summary and "nats" in summary
    assert tokens.count("<span") >= 5 and bars["type"] == "plotly"


LONG = "x" * 10_000_000  # refused by its length, before any tokenising
REFUSED = [  # (api_name, arguments with placeholders filled in below, message)
    ("/generate", ["empty", "analytic", 16, 0, 1], "The canvas is empty"),
    ("/generate", ["all fixed", "analytic", 16, 0, 1], "Every slot is fixed"),
    ("/generate", ["too long", "analytic", 16, 0, 1], "the canvas must have 1 to 24 slots, got 25"),
    ("/generate", ["scattered", "analytic", 0, 0, 1], "steps must be a whole number from 1 to 1,024, got 0"),
    ("/generate", ["scattered", "analytic", 2048, 0, 1], "steps must be a whole number from 1 to 1,024"),
    ("/generate", ["scattered", "analytic", 2.5, 0, 1], "steps must be a whole number from 1 to 1,024, got 2.5"),
    ("/generate", ["scattered", "analytic", 16, 2**64, 1], "seed must be a whole number from 0 to 9,223,372,036,854,775,807"),
    ("/generate", ["scattered", "analytic", 16, "abc", 1], "seed must be a whole number from 0 to"),
    ("/generate", ["scattered", "analytic", 16, float("nan"), 1], "seed must be a whole number from 0 to"),
    ("/generate", ["scattered", "analytic", 16, -1, 1], "seed must be a whole number from 0 to"),
    ("/generate", ["scattered", "analytic", 16, 0, 0], "the batch (candidates) must be a whole number from 1 to 16, got 0"),
    ("/generate", ["scattered", "analytic", 16, None, 1], "the seed is empty: give a whole number from 0 to"),
    ("/generate", ["scattered", "analytic", 16, 0, None], "the batch (candidates) is empty: give a whole number from 1 to 16"),
    ("/generate", ["scattered", "analytic", 16, 0, 1, -1, 0, 1.0, "max", "linear", 0.0], "temperature must be a number"),
    ("/generate", ["scattered", "analytic", 16, 0, 1, 1.0, -1, 1.0, "max", "linear", 0.0], "top-k must be a whole"),
    ("/generate", ["scattered", "analytic", 16, 0, 1, 1.0, 0, 0, "max", "linear", 0.0], "top_p must lie in (0, 1]"),
    ("/generate", ["scattered", "analytic", 16, 0, 1, 1.0, 0, 1.0, "max", "linear", 1.5], "remask must lie in [0, 1)"),
    ("/generate", ["scattered", "first_hitting", 16, 0, 1, 1.0, 0, 1.0, "max", "linear", 0.1],
     "remask does not apply to the first_hitting sampler: it is an option of analytic, euler"),
    ("/branch", ["scattered", 0, 1, 0], "Generate first"),
    ("/preset_template", ["A [[1000]] B"], "a gap must be a whole number from 1 to 24, got 1,000"),
    ("/gap_search", ["The", " dog.", 3, 40, 0], "the longest gap must be a whole number from 3 to 24, got 40"),
    ("/rank", ["scattered", "first_hitting", 16, 0, 17], "(candidates) must be a whole number from 1 to 16, got 17"),
    ("/export", [], "Generate first"),
    ("/generate", ["scattered", "heun", 16, 0, 1], "'heun'"),
    ("/generate", [[{"id": 5, "fixed": "false"}, {"id": None, "fixed": False}], "analytic", 16, 0, 1],
     "slot 1 has fixed = 'false', which is not true or false"),
    ("/generate", [[{"id": True, "fixed": True}, {"id": None, "fixed": False}], "analytic", 16, 0, 1],
     "slot 1 has id = True, which is not a token id or null"),
    ("/generate", [[{"id": 10**9, "fixed": True}, {"id": None, "fixed": False}], "analytic", 16, 0, 1],
     "slot 1 is fixed but holds no valid token id"),
    ("/generate", ["not a canvas", "analytic", 16, 0, 1], "The canvas must be a list of slots"),
    ("/preset_infill", ["The", " end.", None], "a gap is empty: give a whole number from 1 to 24"),
    ("/preset_infill", ["The", " end.", float("nan")], "a gap must be a whole number from 1 to 24, got nan"),
    ("/preset_infill", ["The", " end.", float("inf")], "a gap must be a whole number from 1 to 24, got inf"),
    ("/preset_infill", ["The", " end.", [3]], "a gap must be a whole number from 1 to 24, got [3]"),
    ("/preset_infill", ["The", " end.", 1000], "a gap must be a whole number from 1 to 24, got 1,000"),
    ("/preset_infill", [LONG, " end.", 4], "The text has 10,000,000 characters"),
    ("/preset_continue", ["The fox", "", 24], "slots; the model takes at most 24"),
    ("/score", ["", 16, 0], "nothing to score"),
    ("/score", [LONG + LONG, 16, 0], "The text has 20,000,000 characters"),
    ("/score", ["The fox.", 10**9, 0], "points must be a whole number from 1 to 1,024"),
    ("/score", ["The fox.", 16, "abc"], "seed must be a whole number from 0 to"),
    ("/scrub", [0, 1], "Generate first"),
    ("/scrub", [None, 1], "Generate first"),
]


def call(editor_url, api, body: str):
    """POST a raw request as any HTTP client can (NaN and Infinity included) and read the reply:
    (HTTP status, the reply's text)."""
    base = editor_url.rstrip("/") + "/gradio_api/call/"
    reply = httpx.post(base + api, content=body, headers={"content-type": "application/json"})
    if reply.status_code != 200:
        return reply.status_code, reply.text
    return 200, httpx.get(f"{base}{api}/{reply.json()['event_id']}", timeout=60).text


@pytest.mark.parametrize("api, args, message", REFUSED, ids=[f"{a}-{n}" for n, (a, _, _) in enumerate(REFUSED)])
def test_every_bad_request_gets_its_message(pipe, editor_url, api, args, message):
    canvases = {"empty": [], "all fixed": fixed(pipe, "The fox."), "too long": gap(pipe.length + 1),
                "scattered": scattered(pipe)}
    args = [canvases.get(a, a) if isinstance(a, str) else a for a in args]
    if api == "/generate" and len(args) == 5:
        args += EXACT
    status, reply = call(editor_url, api.strip("/"), json.dumps({"data": args}))
    assert status == 200 and "event: error" in reply
    error = json.loads(reply.split("data: ", 1)[1].splitlines()[0])["error"]
    assert error is not None and message.lower() in error.lower(), error


def test_malformed_calls_get_a_message_not_a_blank(editor_url):
    """Gradio's own checks (argument count, invalid bodies) answer with their message too (show_error)."""
    status, text = call(editor_url, "preset_infill", json.dumps({"data": ["a", "b"]}))  # one argument short
    assert status == 200 and "event: error" in text and "needed: 3, got: 2" in text
    for body, answer in (("{not json", "not valid JSON"), (json.dumps([1, 2]), "must be a JSON object")):
        status, text = call(editor_url, "generate", body)  # refused at the door (app/guard.py)
        assert status == 400 and answer in text
    status, text = call(editor_url, "generate", json.dumps({"data": "x"}))  # refused by Gradio's own check
    assert status == 422 and "detail" in text
    # A lone surrogate is not valid Unicode: a browser can still send one (JSON escapes it), httpx cannot.
    status, text = call(editor_url, "preset_continue", json.dumps({"data": ["ab\ud800", "", 4]}))
    assert "event: error" in text and "not valid Unicode" in text


def test_a_run_past_the_time_limit_stops_with_a_message(pipe):
    from app.events import Editor

    with pytest.raises(gr.Error, match="passed the server's limit of 0 s and was stopped"):
        list(Editor(pipe, time_limit=0).generate(scattered(pipe), "analytic", 64, 0, 1, *EXACT))


def test_each_visitor_has_their_own_run(pipe, editor_url):
    one, two = Client(editor_url, verbose=False), Client(editor_url, verbose=False)
    one.predict(scattered(pipe), "analytic", 8, 0, 1, api_name="/generate")
    assert one.predict(0, 1, api_name="/scrub")[2].startswith("Step 0")
    with pytest.raises(AppError, match="Generate first"):
        two.predict(0, 1, api_name="/scrub")


@pytest.mark.parametrize("model", ["/no/such/folder", "nobody/no-such-model"])
def test_unknown_model_exits_with_a_message(model):
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "app.py", "--model", model], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "cannot load the model" in out.stderr and "Traceback" not in out.stderr


def test_candidates_are_ranked_best_first_with_their_scores(pipe, client):
    start = scattered(pipe)
    out = client.predict(start, "first_hitting", 128, 2, 6, *EXACT, api_name="/generate")
    panel, picker = out[1], out[6]
    scores = [float(x) for x in re.findall(r"<i>([0-9.]+) &plusmn;", panel)]
    assert len(scores) == 6 and scores == sorted(scores)  # the panel: best first, with the score
    labels = [label for label, _ in picker["choices"]]
    assert [float(re.search(r"([0-9.]+) nats", label).group(1)) for label in labels] == sorted(scores, key=float)
    assert picker["value"] == picker["choices"][0][1]  # the canvas shows the best one
    ranked = client.predict(start, "first_hitting", 128, 2, 6, api_name="/rank")
    assert [r["nats_per_slot"] for r in ranked] == sorted(r["nats_per_slot"] for r in ranked)
    assert all(r["slots"] == 9 and r["stderr"] > 0 and r["text"].startswith("The") for r in ranked)


def test_a_branch_keeps_what_its_frame_decided_and_has_its_own_history(pipe, client):
    start = scattered(pipe)
    client.predict(start, "first_hitting", 128, 0, 2, *EXACT, api_name="/generate")
    at_frame = client.predict(4, 2, api_name="/scrub")[0]  # candidate 2, after 4 decisions
    decided = {n: s["id"] for n, s in enumerate(at_frame) if not s["fixed"] and s["id"] is not None}
    assert len(decided) == 4
    out = client.predict(at_frame, 4, 2, 11, api_name="/branch")
    for candidate in (1, 2):
        final = client.predict(out[5]["maximum"], candidate, api_name="/scrub")[0]
        assert all(final[n]["id"] == i for n, i in decided.items())  # kept what frame 4 decided
        assert all(s["id"] is not None for s in final)
    runs = out[7]["choices"]
    assert len(runs) == 2 and "branch of run 1 at frame 4" in runs[1][0]
    assert client.predict(0, 1, api_name="/scrub")[2].startswith("Step 0")  # its history starts at the start
    with pytest.raises(AppError, match="Nothing is left to decide at this frame"):
        client.predict(out[0], out[5]["maximum"], 1, 3, api_name="/branch")
    first = client.predict(0, api_name="/pick_run")
    assert first[7]["value"] == 0 and first[2].startswith("Step 9 of 9")
    client.predict(1, api_name="/pick_run")  # the branch, exported and imported by another visitor
    exported = client.predict(api_name="/export")["path"]
    imported = Client(client.src, verbose=False).predict(handle_file(exported), api_name="/import")
    assert imported[7]["choices"][0][0].startswith("1: imported, a branch of its run 1 at frame 4 ·")


def test_gap_search_ranks_every_length(client):
    found = client.predict("The", " dog.", 2, 5, 0, api_name="/gap_search")
    assert sorted(f["length"] for f in found) == [2, 3, 4, 5]
    assert [f["nats_per_slot"] for f in found] == sorted(f["nats_per_slot"] for f in found)
    assert all(f["text"].startswith("The") and f["text"].endswith(" dog.") for f in found)


def test_anchored_template_keeps_its_characters(client):
    canvas = client.predict("The qu[[4]] fox.", api_name="/preset_template")
    anchored = [(s["side"], s["anchor"]) for s in canvas if "anchor" in s]
    assert len(anchored) == 1 and anchored[0][0] == "start" and " qu".endswith(anchored[0][1])
    for seed in range(3):
        final = client.predict(canvas, "first_hitting", 128, seed, 3, *EXACT, api_name="/generate")[0]
        text = "".join(s["text"] for s in final)
        assert text.startswith("The qu") and text.endswith(" fox."), text
        assert [(s["side"], s["anchor"]) for s in final if "anchor" in s] == anchored  # still anchored


def test_export_import_and_regenerate_give_the_same_run(pipe, client, tmp_path):
    start = scattered(pipe)
    out = client.predict(start, "analytic", 16, 5, 2, 0.9, 0, 0.95, "max", "linear", 0.0, api_name="/generate")
    exported = json.loads(Path(client.predict(api_name="/export")["path"]).read_text())  # the server's file
    assert exported["settings"] == {"predictor": "analytic", "steps": 16, "seed": 5, "candidates": 2,
                                    "controls": {"temperature": 0.9, "top_k": 0, "top_p": 0.95},
                                    "options": {"eps": 1e-5, "remask": 0.0, "remask_from": 0.5, "remask_until": 0.1}}
    assert exported["model"]["name"] == pipe.name and len(exported["frames"]) == 18
    assert client.predict(1, api_name="/export_gif")["path"].endswith(".gif")
    other = Client(client.src, verbose=False)  # another visitor imports it
    path = tmp_path / "run.json"
    path.write_text(json.dumps(exported))
    imported = other.predict(handle_file(str(path)), api_name="/import")
    assert imported[0] == out[0] and imported[7]["choices"][0][0].startswith("1: imported · analytic, 16 steps")
    # the page's sampling controls are set to the run's (issue 21); options analytic lacks, to their defaults
    assert list(imported[8:]) == ["analytic", 16, 5, 2, 0.9, 0, 0.95, "max", "linear", 0.0]
    again = other.predict(exported["start"], *imported[8:], api_name="/generate")
    assert again[0] == out[0] and again[1] == out[1]  # same seed, same model: the same text
    with pytest.raises(AppError, match="not an exported run"):
        path.write_text('{"format": "something else"}')
        other.predict(handle_file(str(path)), api_name="/import")


def test_the_page_says_what_to_expect_with_a_link_to_the_card(tiny_model_dir, tiny_pipe, tmp_path):
    import shutil

    from app.ui import build_demo
    from sedd_core import SEDDPipeline

    folder = tmp_path / "carded"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n\n# carded\n\nA tiny 0.1M test model:\nexpect noise.\n\n"
                                      "## Goals\n\n| goal | met |\n\n![curves](curves.png)\n")
    pipe = SEDDPipeline.from_pretrained(folder, "cpu")
    assert pipe.lead == "A tiny 0.1M test model: expect noise." and "license" not in pipe.card and "![" not in pipe.card

    def page(p):
        blocks = build_demo(p).blocks.values()
        line = next(b for b in blocks if getattr(b, "elem_id", None) == "model").value
        return line, [b for b in blocks if isinstance(b, gr.Accordion) and b.elem_id == "model-card"]

    line, card = page(pipe)
    assert line.startswith("Model **carded**: A tiny 0.1M test model: expect noise. ([model card](#model-card)) 24 slots")
    assert len(card) == 1 and card[0].label == "Model card: carded"
    line, card = page(tiny_pipe)  # a folder without a card: the size alone, no link to nowhere
    assert "model card" not in line and "M parameters, 24 slots" in line and not card
