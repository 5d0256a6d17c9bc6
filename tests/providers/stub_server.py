"""A local HTTP stand-in for the OpenAI and Gemini APIs, for tests that must not touch the network.

The real SDKs talk real HTTP to it, so the whole provider path (request building, parsing,
errors, retries, timeouts) is exercised. It serves:

* ``POST /v1/chat/completions`` (any prefix ending in ``/chat/completions``): OpenAI's chat shape,
  with ``usage``. Point an OpenAI client at ``server.openai_base_url`` (``server.url + "/v1"``).
* ``POST /{version}/models/{model}:generateContent``: Gemini's shape, with ``usageMetadata``.
  Point ``google-genai`` at ``server.url`` (it appends ``/v1beta/models/...`` itself).
* ``GET /v1/models``: a one-model list, for tools that probe an OpenAI-compatible server.

What it answers is scripted per test: :meth:`StubLLMServer.enqueue` appends items to one queue
shared by both APIs, each a plain answer text, a :class:`Reply` (text plus delay / token counts),
a :class:`Fault` (an HTTP error, a slow answer, a garbage body) or a :class:`Trickle` (a correct
answer sent one byte at a time). When the queue is empty the ``responder`` answers: a callable
``(request_json) -> str | Reply | Fault | Trickle``. Every request is recorded (minus
credentials, unless ``capture_credentials=True``) in :attr:`StubLLMServer.requests`; with
``echo_credentials=True`` every response carries the request's credentials back in
``X-Echo-*`` headers, as some debugging proxies do. With ``rejects=`` one of
:data:`SERVER_FAMILIES`, an OpenAI request whose ``response_format`` that server family refuses
gets the status and body that server sends (before the queue is consulted).

Example:
    .. code-block:: python

        from tests.providers.stub_server import Fault, StubLLMServer

        with StubLLMServer(responder=lambda body: '{"a": 1.0, "b": 2.0}') as server:
            server.enqueue(Fault.rate_limited(retry_after=0.5), "a: 1.0, b: 2.0")
            client = OpenAIClient(
                model="stub-model", base_url=server.openai_base_url, api_key="sk-test-x"
            )
            client.complete([Message("user", "next point?")])
            assert server.requests[-1].json["model"] == "stub-model"
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
import http.server
import json
import re
import threading
import time
from typing import Any


__all__ = [
    "SERVER_FAMILIES",
    "Fault",
    "Reply",
    "StubLLMServer",
    "StubRequest",
    "Trickle",
    "default_responder",
]

# Headers that carry credentials; they are never recorded.
_SECRET_HEADERS = frozenset({"authorization", "x-goog-api-key", "api-key", "x-api-key", "cookie"})
_GEMINI_PATH = re.compile(r"/models/(?P<model>[^/]+?):generateContent$")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True)
class Reply:
    """A successful answer.

    Args:
        text: The answer text (``message.content`` / the candidate's text part). ``None`` sends
            an empty answer (OpenAI ``content: null``, Gemini no candidates).
        delay: Seconds to wait before answering (to provoke client timeouts).
        prompt_tokens: Reported prompt tokens; default: request characters // 4.
        completion_tokens: Reported answer tokens; default: ``max(1, len(text) // 4)``.
        finish_reason: OpenAI ``finish_reason`` (Gemini ``finishReason`` is upper-cased).
        model: The model name reported back; default: the requested one.
    """

    text: str | None
    delay: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    model: str | None = None


@dataclass(frozen=True)
class Fault:
    """A failure: an HTTP error status, a slow answer, or an unreadable body.

    Args:
        status: HTTP status code to send.
        message: Error message; wrapped in the API's error shape (``{"error": {...}}``) unless
            ``body`` is given.
        body: Raw body sent as is (bytes or text), e.g. garbage with status 200.
        headers: Extra response headers (``Retry-After``...).
        delay: Seconds to wait before sending (a delay past the client timeout is a timeout).
        content_type: Content type of ``body``.

    The class methods build the common cases.
    """

    status: int = 500
    message: str = "stub fault"
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1.0) -> Fault:
        """HTTP 429 with a ``Retry-After`` header (seconds or an HTTP date; None: no header)."""
        headers = {} if retry_after is None else {"Retry-After": _retry_after_text(retry_after)}
        return cls(429, "Rate limit reached for requests. Please try again later.", None, headers)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """HTTP 500 / 502 / 503 / 504."""
        return cls(status, "The server had an error while processing your request.")

    @classmethod
    def unauthorized(cls, status: int = 401, message: str | None = None) -> Fault:
        """HTTP 401 (or 403) for a rejected API key."""
        return cls(status, message or "Incorrect API key provided.")

    @classmethod
    def not_found(cls, message: str | None = None) -> Fault:
        """HTTP 404 for an unknown model."""
        return cls(404, message or "The model does not exist or you do not have access to it.")

    @classmethod
    def bad_request(cls, message: str = "Invalid request.") -> Fault:
        """HTTP 400 with a message."""
        return cls(400, message)

    @classmethod
    def schema_rejected(cls) -> Fault:
        """HTTP 400 as a server without structured output answers ``response_format``."""
        return cls(400, "response_format of type json_schema is not supported by this server")

    @classmethod
    def slow(cls, delay: float, text: str = "too late") -> Fault:
        """A correct answer sent only after ``delay`` seconds (past the client's timeout)."""
        return cls(200, text, None, {}, delay)

    @classmethod
    def garbage(
        cls, body: bytes | str = b"<html>\x00 this is not JSON", status: int = 200
    ) -> Fault:
        """A body the SDK cannot parse, served as ``application/json``."""
        return cls(status, "", body)


@dataclass(frozen=True)
class Trickle:
    """A correct answer sent one byte every ``interval`` seconds: each read of the client gets a
    byte in time, so only a total deadline ends the wait.

    Args:
        text: The answer text.
        interval: Seconds between two bytes.
        headers: Trickle the status line and headers too (else they come at once, then the
            body trickles).
        padding: Spaces after the JSON body (valid JSON), to make the answer last
            ``(len(body) + padding) * interval`` seconds.
    """

    text: str = '{"a": 0.5, "b": 5.0, "reasoning": "slowly"}'
    interval: float = 0.02
    headers: bool = True
    padding: int = 2000

    @property
    def delay(self) -> float:
        return 0.0


Item = str | Reply | Fault | Trickle
Responder = Callable[[dict[str, Any]], Item]
Rejecter = Callable[[dict[str, Any]], Fault | None]


def _format_type(request_json: dict[str, Any]) -> str | None:
    response_format = request_json.get("response_format")
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    return str(kind) if kind is not None else None


def _json_fault(status: int, payload: Any) -> Fault:
    return Fault(status, body=json.dumps(payload))


def _llama_cpp_python(request_json: dict[str, Any]) -> Fault | None:
    """llama-cpp-python's server 0.3.36 (``python -m llama_cpp.server``): its request model takes
    ``text`` / ``json_object`` (with an optional ``schema``) only; FastAPI's validation error of
    any other type is caught by its error handler and sent as HTTP 500 (body copied from the real
    server)."""
    kind = _format_type(request_json)
    if kind in (None, "text", "json_object"):
        return None
    message = (
        "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
        f"'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': '{kind}', 'ctx': "
        "{'expected': \"'text' or 'json_object'\"}}\n\n  File \"llama_cpp/server/app.py\", "
        "line 376, in create_chat_completion\n    POST /v1/chat/completions"
    )
    error = {"message": message, "type": "internal_server_error", "param": None, "code": None}
    return _json_fault(500, {"error": error})


def _llama_server_2024(request_json: dict[str, Any]) -> Fault | None:
    """llama.cpp's ``llama-server`` before ``json_schema`` support (builds before September 2024,
    and forks such as ik_llama.cpp until 2025): a ``std::runtime_error`` sent as HTTP 500."""
    kind = _format_type(request_json)
    if kind in (None, "text", "json_object"):
        return None
    message = f'response_format type must be one of "text" or "json_object", but got: {kind}'
    return _json_fault(500, {"error": {"code": 500, "message": message, "type": "server_error"}})


def _lm_studio(request_json: dict[str, Any]) -> Fault | None:
    """LM Studio 0.3.x: ``json_schema`` or ``text`` only; the error is a bare string."""
    kind = _format_type(request_json)
    if kind in (None, "text", "json_schema"):
        return None
    return _json_fault(400, {"error": "'response_format.type' must be 'json_schema' or 'text'"})


def _no_structured_output(request_json: dict[str, Any]) -> Fault | None:
    """A strict proxy without structured output: FastAPI's HTTP 422 for an unknown field."""
    if "response_format" not in request_json:
        return None
    detail = [
        {
            "type": "extra_forbidden",
            "loc": ["body", "response_format"],
            "msg": "Extra inputs are not permitted",
        }
    ]
    return _json_fault(422, {"detail": detail})


# How real server families refuse a response_format they do not take (status and body as sent).
# vLLM, Ollama 0.5+ and OpenAI take every shape the client sends: no entry needed.
SERVER_FAMILIES: dict[str, Rejecter] = {
    "llama-cpp-python": _llama_cpp_python,
    "llama-server-2024": _llama_server_2024,
    "lm-studio": _lm_studio,
    "no-structured-output": _no_structured_output,
}


@dataclass(frozen=True)
class StubRequest:
    """One request the server received.

    Attributes:
        method: ``"POST"`` or ``"GET"``.
        path: The request path (with query string).
        api: ``"openai"``, ``"gemini"`` or ``"other"``.
        headers: Request headers, lower-cased names, credentials removed.
        json: The decoded JSON body (``None`` when absent or not JSON).
        had_credentials: Whether an ``Authorization`` / ``x-goog-api-key`` header was present.
        credentials: The credential headers, lower-cased names (only with
            ``StubLLMServer(capture_credentials=True)``; else empty).
    """

    method: str
    path: str
    api: str
    headers: dict[str, str]
    json: Any
    had_credentials: bool
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        """The requested model: the body's ``model`` (OpenAI) or the path's (Gemini)."""
        if self.api == "gemini":
            match = _GEMINI_PATH.search(self.path.split("?", 1)[0])
            return match.group("model") if match else None
        if isinstance(self.json, dict) and isinstance(self.json.get("model"), str):
            return str(self.json["model"])
        return None


def default_responder(request_json: dict[str, Any]) -> str:
    """The default answer: a fixed JSON proposal, valid for most two-parameter tests."""
    return '{"a": 0.5, "b": 5.0, "reasoning": "stub answer"}'


def request_text(request_json: Any) -> str:
    """All message text of an OpenAI or Gemini request body, joined (handy for responders)."""
    if not isinstance(request_json, dict):
        return ""
    parts: list[str] = []
    for message in request_json.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    contents = list(request_json.get("contents") or [])
    system = request_json.get("systemInstruction") or request_json.get("system_instruction")
    if isinstance(system, dict):
        contents.insert(0, system)
    for content in contents:
        for part in content.get("parts") or [] if isinstance(content, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
    return "\n".join(parts)


class StubLLMServer:
    """A scripted OpenAI- and Gemini-compatible HTTP server on ``127.0.0.1`` (a free port).

    Use it as a context manager (or :meth:`start` / :meth:`stop`); the ``stub_server`` pytest
    fixture in ``tests/providers/conftest.py`` yields a started one.

    Args:
        responder: Answers a request when the queue is empty: ``(request_json) -> str | Reply |
            Fault``. Default: :func:`default_responder`.
        model: Reported by ``GET /v1/models``.
        host: Interface to bind.
        capture_credentials: Record the credential headers in :attr:`StubRequest.credentials`
            (for tests of where a key is sent).
        echo_credentials: Send the request's credential headers back as ``X-Echo-<name>``
            response headers (for tests that a key echoed by a server is not logged).
        rejects: ``(request_json) -> Fault | None``, e.g. a :data:`SERVER_FAMILIES` value: the
            fault an OpenAI request gets instead of the queue's item (None: served as usual).

    Attributes:
        requests: Every request received, in order (a snapshot copy; see :class:`StubRequest`).

    Example:
        .. code-block:: python

            with StubLLMServer() as server:
                server.enqueue("a: 1, b: 2", Fault.server_error(503))
                print(server.url, server.openai_base_url)
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        model: str = "stub-model",
        host: str = "127.0.0.1",
        capture_credentials: bool = False,
        echo_credentials: bool = False,
        rejects: Rejecter | None = None,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.rejects = rejects
        self.model = model
        self.capture_credentials = capture_credentials
        self.echo_credentials = echo_credentials
        self._host = host
        self._queue: deque[Item] = deque()
        self._requests: list[StubRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> StubLLMServer:
        """Bind a free port and serve in a background thread. Returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        handler = type("_BoundHandler", (_Handler,), {"stub": self})
        httpd = http.server.ThreadingHTTPServer((self._host, 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed answers and close the socket. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StubLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("StubLLMServer is not running; call start() or use `with`.")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash); Gemini's ``base_url``."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``url + "/v1"``, the ``base_url`` of an OpenAI client."""
        return self.url + "/v1"

    # -- scripting --------------------------------------------------------------------------

    def enqueue(self, *items: Item) -> None:
        """Append answers / faults; each request pops one, in order, whatever its API."""
        with self._lock:
            self._queue.extend(items)

    def clear(self) -> None:
        """Forget the queue and the recorded requests."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    @property
    def pending(self) -> int:
        """Items still queued."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[StubRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, api: str) -> list[StubRequest]:
        """Recorded requests of one API (``"openai"`` or ``"gemini"``)."""
        return [r for r in self.requests if r.api == api]

    def iter_bodies(self) -> Iterator[Any]:
        """The JSON bodies received, in order."""
        return (r.json for r in self.requests)

    # -- internals used by the handler ------------------------------------------------------

    def _record(self, request: StubRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_and_pop(self, request: StubRequest) -> Item | None:
        with self._lock:
            self._requests.append(request)
            return self._queue.popleft() if self._queue else None

    def _next_item(self, request: StubRequest) -> Item:
        item = self._record_and_pop(request)
        if item is None:
            item = self.responder(request.json if isinstance(request.json, dict) else {})
        return item

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server stops first; True when it is stopping."""
        return seconds > 0 and self._stopping.wait(seconds)


class _Handler(http.server.BaseHTTPRequestHandler):
    stub: StubLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep test output clean

    # -- routing ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        self._discard_body()
        if path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [_model_entry(self.stub.model)]})
        else:
            self._send_json(404, {"error": {"message": f"no route for GET {path}"}})

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if path.endswith("/chat/completions"):
            api = "openai"
        elif _GEMINI_PATH.search(path):
            api = "gemini"
        else:
            api = "other"
        headers = {k.lower(): v for k, v in self.headers.items()}
        secrets = {k: v for k, v in headers.items() if k in _SECRET_HEADERS}
        self._echo = (
            {f"X-Echo-{k}": v for k, v in secrets.items()} if self.stub.echo_credentials else {}
        )
        request = StubRequest(
            method="POST",
            path=self.path,
            api=api,
            headers={k: v for k, v in headers.items() if k not in _SECRET_HEADERS},
            json=body,
            had_credentials=bool(secrets),
            credentials=secrets if self.stub.capture_credentials else {},
        )
        if api == "other":
            self.stub._record_and_pop(request)
            self._send_json(404, {"error": {"message": f"no route for POST {path}"}})
            return
        rejection = (
            self.stub.rejects(body)
            if self.stub.rejects is not None and api == "openai" and isinstance(body, dict)
            else None
        )
        if rejection is not None:
            self.stub._record(request)
            self._send_fault(api, rejection, request)
            return
        try:
            item = self.stub._next_item(request)
        except Exception as exc:  # a broken responder answers 500, visibly
            item = Fault(500, f"stub responder raised {type(exc).__name__}: {exc}")
        if isinstance(item, str):
            item = Reply(item)
        delay = item.delay
        if self.stub._wait(delay):
            self.close_connection = True  # stopping: drop the connection, answer nothing
            return
        try:
            if isinstance(item, Fault):
                self._send_fault(api, item, request)
            elif isinstance(item, Trickle):
                self._send_trickle(api, item, request)
            else:
                self._send_reply(api, item, request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the answer came

    # -- responses --------------------------------------------------------------------------

    def _send_trickle(self, api: str, trickle: Trickle, request: StubRequest) -> None:
        body = json.dumps(self._reply_payload(api, Reply(trickle.text), request)).encode()
        body += b" " * trickle.padding
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.close_connection = True
        if not trickle.headers:
            self.wfile.write(head)
            self.wfile.flush()
        for byte in head + body if trickle.headers else body:
            if self.stub._wait(trickle.interval):
                return  # stopping
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _send_reply(self, api: str, reply: Reply, request: StubRequest) -> None:
        self._send_json(200, self._reply_payload(api, reply, request))

    def _reply_payload(self, api: str, reply: Reply, request: StubRequest) -> dict[str, Any]:
        prompt_tokens = (
            reply.prompt_tokens
            if reply.prompt_tokens is not None
            else max(1, len(request_text(request.json)) // 4)
        )
        text = reply.text
        completion_tokens = (
            reply.completion_tokens
            if reply.completion_tokens is not None
            else max(1, len(text or "") // 4)
        )
        model = reply.model or request.model or self.stub.model
        if api == "openai":
            payload: dict[str, Any] = {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        else:
            candidates = (
                []
                if text is None
                else [
                    {
                        "content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": reply.finish_reason.upper(),
                        "index": 0,
                    }
                ]
            )
            payload = {
                "candidates": candidates,
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": completion_tokens,
                    "totalTokenCount": prompt_tokens + completion_tokens,
                },
                "modelVersion": model,
                "responseId": "stub",
            }
        return payload

    def _send_fault(self, api: str, fault: Fault, request: StubRequest) -> None:
        if fault.body is not None:
            data = fault.body.encode() if isinstance(fault.body, str) else fault.body
            self._send_bytes(fault.status, data, fault.content_type, fault.headers)
            return
        if fault.status < 400:  # Fault.slow: a normal answer, late
            self._send_reply(api, Reply(fault.message), request)
            return
        if api == "gemini":
            error: dict[str, Any] = {
                "code": fault.status,
                "message": fault.message,
                "status": _STATUS_NAMES.get(fault.status, "UNKNOWN"),
            }
        else:
            error = {
                "message": fault.message,
                "type": "invalid_request_error" if fault.status < 500 else "server_error",
                "param": "response_format" if "response_format" in fault.message else None,
                "code": None,
            }
        self._send_json(fault.status, {"error": error}, fault.headers)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers or {})

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in {**headers, **getattr(self, "_echo", {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _discard_body(self) -> None:
        self._read_body()


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "stub"}


def _retry_after_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))
