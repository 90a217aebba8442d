"""The server's door for a public Space: an ASGI middleware in front of Gradio's routes.

Gradio answers some wrong requests with an HTTP 500 and lets one client fill the shared queue. Here,
before Gradio sees a request:
- an unknown endpoint name (`/call/NAME`, `/call/v2/NAME`, `/run/NAME`, `/api/NAME`), an unknown
  parameter name (`/call/v2`), an unknown `fn_index` (`/queue/join`) get a 4xx with a message;
- a client (its address; behind a proxy on this machine or a private network, the proxy's
  X-Forwarded-For) may hold at most `per_client` jobs in the queue: more get 429, so nobody can
  lock the others out;
- `/cancel` cancels only an event that is queued or running in the session it names;
- `/run/NAME` and `/api/NAME` take the documented arguments (the page's hidden state filled in, as
  `/call` does), and a refusal there (a gr.Error) is a 400, not a 500.
"""
import ipaddress
import json
import re

import gradio as gr

JOINS = re.compile(r"^(?P<root>.*?)/(?:gradio_api/)?(?:queue/join|call/(?!v2/)(?P<call>[^/]+)/?|call/v2/(?P<v2>[^/]+)/?)$")
DIRECT = re.compile(r"^.*?/(?:gradio_api/)?(?:run|api)/(?P<name>[^/]+)/?$")
CANCEL = re.compile(r"^.*?/(?:gradio_api/)?cancel/?$")
MAX_BODY = 64 * 2**20  # JSON bodies of the routes above; larger ones are refused unread


def client_key(scope) -> str:
    """Who is asking: the peer's address, or the nearest proxy's X-Forwarded-For entry when the peer
    is a proxy on this machine or a private network."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    try:
        trusted = ipaddress.ip_address(peer).is_private or ipaddress.ip_address(peer).is_loopback
    except ValueError:
        trusted = False
    forwarded = dict(scope.get("headers") or []).get(b"x-forwarded-for", b"").decode("latin-1")
    if trusted and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return peer


class Guard:
    def __init__(self, app, blocks: gr.Blocks, per_client: int = 4):
        self.app, self.blocks, self.per_client = app, blocks, per_client
        self.jobs = {}  # event id -> client key, for the jobs this guard let into the queue
        self._endpoints = None

    @property
    def endpoints(self) -> dict:
        """api name -> (its function, its documented parameter names)."""
        if self._endpoints is None:
            info = self.blocks.get_api_info()["named_endpoints"]
            fns = {fn.api_name: fn for fn in self.blocks.fns.values() if fn.api_name}
            self._endpoints = {name: (fns[name], [p["parameter_name"] for p in info[f"/{name}"]["parameters"]])
                               for name in fns if f"/{name}" in info}
        return self._endpoints

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        joins, direct, cancel = JOINS.match(path), DIRECT.match(path), CANCEL.match(path)
        if not (joins or direct or cancel):
            return await self.app(scope, receive, send)
        raw = await self._body(receive)
        if raw is None:
            return await self._refuse(send, 413, "the request body is too large")
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return await self._refuse(send, 400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return await self._refuse(send, 400, "the request body must be a JSON object")
        problem = self._problem(body, joins, direct, cancel, client_key(scope))
        if problem:
            return await self._refuse(send, *problem)
        if direct:
            raw = json.dumps(self._with_state(body, direct["name"])).encode()
        replay = self._replay(raw)
        if joins:
            return await self.app(scope, replay, self._remember(send, client_key(scope)))
        if direct:
            return await self.app(scope, replay, self._refusal_is_400(send))
        return await self.app(scope, replay, send)

    def _problem(self, body, joins, direct, cancel, key):
        """(status, message) when the request is refused, else None."""
        queue = self.blocks._queue
        if cancel:
            session, event = body.get("session_hash"), body.get("event_id")
            if not (isinstance(session, str) and isinstance(event, str)
                    and event in queue.pending_event_ids_session.get(session, ())):
                return 404, "there is no such run in that session to cancel"
            return None
        name = direct["name"] if direct else joins["call"] or joins["v2"]
        if name is not None and name not in self.endpoints:
            return 404, f"there is no endpoint {name!r}: see {', '.join(sorted(self.endpoints))}"
        if joins and joins["v2"]:
            unknown = set(body.get("data") or {}) - set(self.endpoints[name][1]) if isinstance(body.get("data"), dict) else set()
            if unknown:
                return 400, (f"The endpoint {name} has no parameter {sorted(unknown)[0]!r}: its parameters are "
                             f"{', '.join(self.endpoints[name][1])}")
        if joins and name is None:  # /queue/join names its function by index
            index = body.get("fn_index")
            if isinstance(index, bool) or not isinstance(index, int) or index not in self.blocks.fns:
                return 400, f"The fn_index must name one of the page's functions, got {index!r}"
        if joins:
            self.jobs = {e: k for e, k in self.jobs.items() if e in queue.event_ids_to_events}  # still queued or running
            if sum(k == key for k in self.jobs.values()) >= self.per_client:
                return 429, (f"you already have {self.per_client} requests waiting or running: wait for one to "
                             "finish (or stop it) before sending another")
        return None

    def _with_state(self, body: dict, name: str) -> dict:
        """The documented arguments with None where the function takes the page's hidden state."""
        fn, documented = self.endpoints[name]
        data = body.get("data")
        states = [n for n, c in enumerate(fn.inputs) if isinstance(c, gr.State)]
        if isinstance(data, list) and states and len(data) == len(fn.inputs) - len(states):
            data = list(data)
            for n in states:
                data.insert(n, None)
            body = {**body, "data": data}
        return body

    async def _body(self, receive):
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def _replay(raw: bytes):
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return receive

    def _remember(self, send, key):
        """Send on, noting the event id of a job let into the queue (for the per-client count)."""
        async def wrapped(message):
            if message["type"] == "http.response.body":
                try:
                    event = json.loads(message.get("body") or b"{}").get("event_id")
                except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                    event = None
                if isinstance(event, str):
                    self.jobs[event] = key
            await send(message)
        return wrapped

    @staticmethod
    def _refusal_is_400(send):
        """A refusal (a gr.Error, whose payload has a title) answered 400 instead of Gradio's 500."""
        start = None

        async def wrapped(message):
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] == 500:
                start = message  # held until the body says what it is
                return
            if start is not None and message["type"] == "http.response.body":
                try:
                    refusal = "title" in json.loads(message.get("body") or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
                    refusal = False
                await send({**start, "status": 400 if refusal else 500})
                start = None
            await send(message)
        return wrapped

    @staticmethod
    async def _refuse(send, status: int, message: str):
        body = json.dumps({"error": message[:1].upper() + message[1:] + "."}).encode()  # as gr.Error words it
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
