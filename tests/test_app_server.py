"""The server as a public Space sees it (issue 20): wrong requests get a 4xx with a message, never a
5xx; one client cannot fill the queue; nobody cancels another visitor's run; every handler that
runs the model stops at the time limit; start-up flags are checked."""
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest

from app.cli import parse
from app.events import Editor
from app.guard import Guard

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
ROOT = Path(__file__).resolve().parent.parent
MASKS = [{"id": None, "text": "", "fixed": False}] * 6
REQUESTS = [  # (path, JSON body, expected status): each once answered 500 (issue 20, item 6)
    ("/gradio_api/call/nope", {"data": []}, 404),
    ("/gradio_api/run/nope", {"data": []}, 404),
    ("/gradio_api/api/nope", {"data": []}, 404),
    ("/gradio_api/call/v2/nope", {"data": {}}, 404),
    ("/gradio_api/call/v2/score", {"data": {"nope": 1}}, 400),
    ("/gradio_api/run/score", {"data": ["", 64, 0]}, 400),
    ("/gradio_api/api/score", {"data": ["", 64, 0]}, 400),
    ("/gradio_api/run/generate", {"data": [MASKS, "nope", 8, 0, 1, 1.0, 0, 1.0, "max", "linear", 0.0]}, 400),
    ("/gradio_api/queue/join", {"data": [], "fn_index": 9999, "session_hash": "abc"}, 400),
    ("/gradio_api/queue/join", {"data": [], "fn_index": -1, "session_hash": "abc"}, 400),
    ("/gradio_api/queue/join", {"data": [], "fn_index": "x", "session_hash": "abc"}, 400),
    ("/gradio_api/call/add_text", {"data": [[]]}, 404),
    ("/gradio_api/cancel", {"session_hash": "abc", "fn_index": 0, "event_id": "zzz"}, 404),
    ("/gradio_api/call/score", [1, 2], 400),
]


@pytest.mark.parametrize("path, body, status", REQUESTS)
def test_a_wrong_request_gets_a_4xx_with_a_message(editor_url, path, body, status):
    reply = httpx.post(editor_url.rstrip("/") + path, json=body, timeout=60)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]


def test_the_documented_arguments_work_on_run(editor_url):
    """/run/generate takes /call's arguments: the page's hidden state is filled in (a streaming
    handler answers its first frame there; /call streams them all)."""
    reply = httpx.post(editor_url.rstrip("/") + "/gradio_api/run/generate",
                       json={"data": [MASKS, "first_hitting", 8, 0, 1, 1.0, 0, 1.0, "max", "linear", 0.0]}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"][0]) == len(MASKS)


class FakeQueue:
    def __init__(self):
        self.event_ids_to_events, self.pending_event_ids_session = {}, {}


def guarded():
    """A Guard in front of an app that lets every job into a fake queue (where it stays)."""
    queue = FakeQueue()
    blocks = SimpleNamespace(_queue=queue, fns={0: None}, get_api_info=lambda: {"named_endpoints": {}})
    cancelled = []

    async def app(scope, receive, send):
        body = json.loads((await receive())["body"])
        if scope["path"].endswith("/cancel"):
            cancelled.append(body["event_id"])
            answer = {"success": True}
        else:
            event = uuid.uuid4().hex
            queue.event_ids_to_events[event] = object()
            queue.pending_event_ids_session.setdefault(body["session_hash"], set()).add(event)
            answer = {"event_id": event}
        raw = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": raw})
    return Guard(app, blocks, per_client=4), queue, cancelled


def post(guard, path, body, client="1.2.3.4", headers=()):
    sent = []

    async def receive():
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "POST", "path": path, "client": (client, 5000), "headers": list(headers)}
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_one_client_holds_at_most_four_jobs_and_others_still_get_in():
    guard, queue, _ = guarded()
    join = {"data": [], "fn_index": 0}
    codes = [post(guard, "/gradio_api/queue/join", join | {"session_hash": f"s{n}"})[0] for n in range(6)]
    assert codes == [200] * 4 + [429] * 2  # new session hashes do not help: the client is counted
    assert post(guard, "/gradio_api/queue/join", join | {"session_hash": "t"}, client="5.6.7.8")[0] == 200
    behind = [(b"x-forwarded-for", b"9.9.9.9")]  # a proxy on this machine: its X-Forwarded-For names the client
    assert post(guard, "/gradio_api/queue/join", join | {"session_hash": "u"}, "127.0.0.1", behind)[0] == 200
    spoofed = [(b"x-forwarded-for", b"7.7.7.7")]  # a public peer cannot pose as someone else
    assert post(guard, "/gradio_api/queue/join", join | {"session_hash": "v"}, headers=spoofed)[0] == 429
    del queue.event_ids_to_events[next(iter(queue.event_ids_to_events))]  # its first job ends
    assert post(guard, "/gradio_api/queue/join", join | {"session_hash": "w"})[0] == 200


def test_a_run_is_cancelled_only_with_its_own_session_and_event():
    guard, queue, cancelled = guarded()
    _, answer = post(guard, "/gradio_api/queue/join", {"data": [], "fn_index": 0, "session_hash": "victim"})
    mine = answer["event_id"]
    assert post(guard, "/gradio_api/cancel", {"session_hash": "victim", "fn_index": 0, "event_id": "guess"})[0] == 404
    assert post(guard, "/gradio_api/cancel", {"session_hash": "other", "fn_index": 0, "event_id": mine})[0] == 404
    assert cancelled == []
    assert post(guard, "/gradio_api/cancel", {"session_hash": "victim", "fn_index": 0, "event_id": mine})[0] == 200
    assert cancelled == [mine]


CANVAS = [{"id": 5, "text": "a", "fixed": True}] + [{"id": None, "text": "", "fixed": False}] * 20
HANDLERS = {  # every handler that runs the model, with a request heavy enough to pass a short limit
    "generate": lambda ed, h: list(ed.generate(CANVAS, "analytic", 1024, 0, 16)),
    "branch": lambda ed, h: list(ed.branch(CANVAS, h, 0, 1, 1)),
    "rank": lambda ed, h: ed.rank(CANVAS, "analytic", 1024, 0, 16),
    "gap_search": lambda ed, h: ed.gap_search("a", "b", 1, 20, 0),
    "gap_choices": lambda ed, h: ed.gap_choices("a", "b", 1, 20, 0, "first_hitting", 8),
    "score": lambda ed, h: ed.score("a b c " * 3, 1024, 0),  # 16 calls of a tiny model: under 0.3 s
}
LIMITS = {"score": 0.01}


@pytest.mark.parametrize("name", HANDLERS)
def test_every_model_handler_stops_at_the_time_limit(tiny_pipe, name):
    history = list(Editor(tiny_pipe).generate(CANVAS, "analytic", 1024, 0, 2))[-1][5]
    limit = LIMITS.get(name, 0.3)
    ed = Editor(tiny_pipe, time_limit=limit)
    start = time.perf_counter()
    with pytest.raises(gr.Error, match=f"passed the server's limit of {limit:g} s and was stopped"):
        HANDLERS[name](ed, history)
    assert time.perf_counter() - start < limit + 1.0  # at most one network call past it (a tiny model: ms)


@pytest.mark.parametrize("flags, message", [
    (["--time-limit", "nan"], "finite number of seconds above 0"),
    (["--time-limit", "-5"], "finite number of seconds above 0"),
    (["--time-limit", "0"], "finite number of seconds above 0"),
    (["--port", "99999"], "a port lies from 1 to 65535"),
    (["--precision", "fp16"], "invalid choice"),
])
def test_bad_start_up_flags_are_refused(capsys, flags, message):
    with pytest.raises(SystemExit) as err:
        parse(flags)
    assert err.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", ""])
def test_a_bad_time_limit_in_the_environment_is_refused(monkeypatch, capsys, value):
    monkeypatch.setenv("SEDD_TIME_LIMIT", value)
    with pytest.raises(SystemExit):
        parse([])
    assert "$SEDD_TIME_LIMIT" in capsys.readouterr().err


def test_a_file_given_as_the_model_is_named_a_file():
    out = subprocess.run([sys.executable, "app.py", "--model", "/etc/passwd"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "is a file, not a model folder" in out.stderr


def test_the_pages_gap_search_uses_the_pages_sampler_and_controls(tiny_pipe):
    ed = Editor(tiny_pipe)
    with pytest.raises(gr.Error, match="Unknown sampler 'nope'"):
        ed.gap_choices("a", "b", 1, 2, 0, "nope", 8)
    with pytest.raises(gr.Error, match="Remask does not apply to the first_hitting sampler"):
        ed.gap_choices("a", "b", 1, 2, 0, "first_hitting", 8, remask=0.1)
    radio, found = ed.gap_choices("a", "b", 1, 2, 0, "analytic", 8)
    assert [label.split(" · ")[0] for label, _ in radio.choices] == sorted(
        ["1 slot", "2 slots"], key=[f"{f.length} slot{'s' * (f.length != 1)}" for f in found].index)


def test_a_visitors_history_is_let_go_after_its_time_to_live(tiny_pipe, monkeypatch):
    """The history is a gr.State with a time to live: Gradio drops it (every second) once expired."""
    from gradio_client import Client

    import app.ui as ui
    from conftest import free_port
    monkeypatch.setattr(ui, "SESSION_SECONDS", 1)
    demo = ui.serve(tiny_pipe, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        client.predict(MASKS, "first_hitting", 8, 0, 1, 1.0, 0, 1.0, "max", "linear", 0.0, api_name="/generate")
        from app.run import History
        held = demo.state_holder.session_data[client.session_hash].state_data
        history = next(k for k, v in held.items() if isinstance(v, History))
        assert held[history].runs  # the run is kept while the visitor is there
        time.sleep(3)
        assert history not in held  # and let go after its time to live
    finally:
        demo.close()
