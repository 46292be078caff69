"""What the CSRF tests share: a protected app, raw scopes, and the attack-battery runner.

The battery drives one protected app through httpx.ASGITransport with a real session
cookie; every row states the request and the expected status, and a call counter proves
the handler never ran on a rejection. Each test module keeps the rows for its own job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from asgisession import CSRFMiddleware, Session, SessionMiddleware, csrf_token
from asgisession._types import ASGIApp, Message, Receive, Scope, Send
from asgisession.crypto import b64url_decode, b64url_encode
from asgisession.csrf import SESSION_KEY
from asgisession.session import LoadedState

from ..asgi_helpers import Recorder, http_scope
from ..asgi_helpers import client as asgi_client

TRUSTED = ["https://*.example.com", "https://partner.test"]
FORM = "application/x-www-form-urlencoded"
MP = "multipart/form-data; boundary=XyZ"
TOKEN = [("x-csrf-token", "{token}")]
SAME = [("sec-fetch-site", "same-origin")]


def masked(secret: bytes, value: bytes) -> str:
    """``value`` masked with a random pad, the way Rails masks tokens."""
    pad = secrets.token_bytes(32)
    return b64url_encode(pad + bytes(a ^ b for a, b in zip(pad, value, strict=True)))


def global_token(secret: bytes) -> bytes:
    return hmac.new(secret, b"!real_csrf_token", hashlib.sha256).digest()


class Handler:
    """The protected app: counts its calls and echoes the body it received."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []
        self.sessions: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        session = scope["session"]
        if scope["path"] == "/token":
            token = csrf_token(scope)
            payload = {"token": token, "raw": session[SESSION_KEY]}
            await respond(send, json.dumps(payload).encode())
            return
        self.calls += 1
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        if scope["path"] == "/regenerate":
            session.regenerate()
        elif scope["path"] == "/reset":
            session.reset()
        elif scope["path"] == "/write":
            session["written"] = True
        self.sessions.append(dict(session))
        await respond(send, b"".join(chunks), [(b"vary", b"Accept-Encoding, origin")])


async def respond(send: Send, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def build(secret: str, handler: ASGIApp, **options: Any) -> ASGIApp:
    """``handler`` behind CSRFMiddleware (the battery's settings) behind SessionMiddleware."""
    options.setdefault("trusted_origins", TRUSTED)
    options.setdefault("exempt", ["/webhooks/"])
    options.setdefault("max_body_size", 4096)
    return SessionMiddleware(CSRFMiddleware(handler, **options), secret_key_base=secret)


def client(app: ASGIApp, scheme: str = "http") -> httpx.AsyncClient:
    return asgi_client(app, base_url=f"{scheme}://testserver")


async def fetch_token(http: httpx.AsyncClient) -> tuple[str, bytes]:
    """A masked token and the raw secret, from the app's /token page."""
    response = await http.get("/token")
    data = response.json()
    return data["token"], b64url_decode(data["raw"])


def multipart(boundary: str, fields: Sequence[tuple[str, str]], filename: bool = False) -> bytes:
    out = b""
    for name, value in fields:
        disposition = f'form-data; name="{name}"' + ('; filename="a.txt"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n".encode()
    return out + f"--{boundary}--\r\n".encode()


# -- the attack battery -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request against the protected app and the status it must get."""

    status: int
    method: str = "POST"
    path: str = "/submit"
    headers: Sequence[tuple[str, str | bytes]] = ()
    body: str = ""
    scheme: str = "http"


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


async def run_case(case: Case, secret: str) -> None:
    """Send ``case`` with its placeholders filled; check the status and the handler's calls."""
    handler = Handler()
    app = build(secret, handler)
    async with client(app, case.scheme) as http, client(app, case.scheme) as other:
        token, raw = await fetch_token(http)
        other_token, _ = await fetch_token(other)
        values = {
            "token85": token[:85],
            "token_std": token[:10] + "+" + token[11:],  # a standard-alphabet character
            "token": token,
            "other": other_token,
            "raw": b64url_encode(raw),
            "masked_raw": masked(raw, raw),
            "q": token,
            "t": token,
        }
        values["multipart"] = multipart("XyZ", [("a", "1"), ("authenticity_token", token)]).decode()
        values["multipart_twice"] = multipart(
            "XyZ", [("authenticity_token", token), ("authenticity_token", token)]
        ).decode()
        values["multipart_file"] = multipart("XyZ", [("authenticity_token", token)], True).decode()
        headers = [
            (k.encode(), fill(v, values).encode() if isinstance(v, str) else v)
            for k, v in case.headers
        ]
        body = fill(case.body, values).encode()
        response = await http.request(case.method, case.path, headers=headers, content=body)
    assert case.status == response.status_code, response.text
    if case.status == 200:
        assert 1 == handler.calls
        assert [body] == handler.bodies  # the exact bytes reach the app
    else:
        assert 0 == handler.calls


# -- raw ASGI -----------------------------------------------------------------------------


def request_scope(
    *,
    path: str = "/submit",
    raw_path: bytes | None = None,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = (),
    scope_type: str = "http",
    session: bool = True,
    raw: bytes | None = None,
) -> Scope:
    """A POST scope for CSRFMiddleware alone, with a loaded session holding secret ``raw``."""
    scheme = "http" if scope_type == "http" else "ws"
    scope = http_scope(path=path, scheme=scheme, scope_type=scope_type)
    scope["method"] = method
    if raw_path is not None:
        scope["raw_path"] = raw_path
    scope["headers"] = [*scope["headers"], *headers]
    if session:
        data = {} if raw is None else {SESSION_KEY: b64url_encode(raw)}
        scope["session"] = Session(lambda: LoadedState(data=dict(data)))
    return scope


async def call(app: ASGIApp, scope: Scope, incoming: Sequence[Message] = ()) -> Recorder:
    """Run ``app`` once; the Recorder holds what it sent and what it left unread."""
    recorder = Recorder(incoming)
    await app(scope, recorder.receive, recorder.send)
    return recorder
