"""The editor end to end: the app runs in-process on a free port and is driven through gradio_client."""
import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app import build_demo
from sedd_core import SEDDPipeline

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    return SEDDPipeline.from_pretrained(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def url(pipe):
    demo = build_demo(pipe)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    yield demo.local_url
    demo.close()


@pytest.fixture
def client(url):
    return Client(url, verbose=False, download_files=False)


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
    canvas, panel, status, heat, masks, frame, shown = client.predict(
        start, "analytic", 16, 3, 2, api_name="/generate")
    assert_fixed_kept(start, canvas)
    assert status.startswith("Done") and panel.count("sedd-cand") >= 2
    assert heat["type"] == "plotly" and masks["type"] == "plotly"
    second = client.predict(frame["value"], 2, api_name="/scrub")[0]  # the other candidate, same session
    assert_fixed_kept(start, second)
    first_frame = client.predict(0, 1, api_name="/scrub")[0]  # scrubbing back to the start: all masked
    assert [s["id"] for s in first_frame if not s["fixed"]] == [None] * sum(not s["fixed"] for s in start)


def test_euler_and_several_candidates(pipe, client):
    start = scattered(pipe)
    canvas = client.predict(start, "euler", 8, 0, 4, api_name="/generate")[0]
    assert_fixed_kept(start, canvas)


def test_streaming_yields_intermediate_states(pipe, client):
    start = scattered(pipe)
    job = client.submit(start, "analytic", 64, 1, 1, api_name="/generate")
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
    outs = list(client.submit(start, "first_hitting", 128, 0, 2, api_name="/generate"))
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


@pytest.mark.parametrize("canvas, steps, message", [
    ("empty", 16, "The canvas is empty"),
    ("all fixed", 16, "Every slot is fixed"),
    ("too long", 16, "model takes at most 24"),
    ("scattered", 4, "Steps must be a whole number from 8 to 1024"),
    ("scattered", 2048, "Steps must be a whole number from 8 to 1024"),
])
def test_bad_generate_input_gives_a_message(pipe, client, canvas, steps, message):
    canvas = {"empty": [], "all fixed": fixed(pipe, "The fox."), "too long": gap(pipe.length + 1),
              "scattered": scattered(pipe)}[canvas]
    with pytest.raises(AppError, match=message):
        client.predict(canvas, "analytic", steps, 0, 1, api_name="/generate")


def test_other_bad_input_gives_a_message(pipe, client, url):
    with pytest.raises(AppError, match="nothing to score"):
        client.predict("", 16, 0, api_name="/score")
    with pytest.raises(AppError, match="model takes at most 24"):
        client.predict("The fox", "", 24, api_name="/preset_continue")
    with pytest.raises(AppError, match="Generate first"):
        client.predict(0, 1, api_name="/scrub")
    # A lone surrogate is not valid Unicode: a browser can still send one (JSON escapes it), httpx cannot.
    base = url.rstrip("/") + "/gradio_api/call/preset_continue"
    event = httpx.post(base, content=json.dumps({"data": ["ab\ud800", "", 4]}),
                       headers={"content-type": "application/json"}).json()["event_id"]
    reply = httpx.get(f"{base}/{event}", timeout=30).text
    assert "event: error" in reply and "tokenizer cannot encode this text" in reply


def test_each_visitor_has_their_own_run(pipe, url):
    one, two = Client(url, verbose=False), Client(url, verbose=False)
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
