"""Our form reader against Starlette's: for the same body, both find the same token value,
or the request is refused (by our reader, or by Starlette's parser failing).

A gap between the two would let a body carry one token for the CSRF check and another for
the app. Bodies come from hypothesis and from a hand-made list of tricky ones: duplicate
fields, a field after files, odd boundaries, quoted names, charsets.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from asgisession import CSRFMiddleware, SessionMiddleware, csrf_token
from asgisession._types import Message
from asgisession.csrf import forms, mask_token
from asgisession.csrf.fields import _form_fields

from ..csrf.helpers import client

pytestmark = pytest.mark.integration

TOKEN = mask_token(secrets.token_bytes(32))
OTHER = mask_token(secrets.token_bytes(32))
SECRET = secrets.token_hex(32)
FIELD = "authenticity_token"


async def starlette_values(content_type: bytes, body: bytes) -> list[str] | None:
    """The field's values as Starlette's ``request.form()`` reads them; None if it refuses."""
    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
             "headers": [(b"content-type", content_type)]}  # fmt: skip
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    try:
        form = await Request(scope, receive).form()
    except (MultiPartException, HTTPException):
        return None
    try:
        return [v if isinstance(v, str) else "<file>" for v in form.getlist(FIELD)]
    finally:
        for value in form.values():
            if isinstance(value, UploadFile):
                await value.close()


async def check_agreement(content_type: bytes, body: bytes) -> bytes | None:
    """Assert the rule; return the value we accept, or None when we refuse."""
    ours = _form_fields(content_type, body)
    accepted = ours[0] if ours is not None and len(ours) == 1 else None
    if accepted is None:
        return None  # we refuse: nothing Starlette reads can pass the check
    theirs = await starlette_values(content_type, body)
    assert theirs is None or [accepted.decode()] == theirs, (ours, theirs)
    return accepted


def part(name: str, value: str, extra: str = "", boundary: str = "B") -> str:
    return f"--{boundary}\r\nContent-Disposition: form-data; name={name}{extra}\r\n\r\n{value}\r\n"


MP = "multipart/form-data; boundary=B"
FORM = "application/x-www-form-urlencoded"
#: (content type, body, the value we accept or None for a refusal)
HAND_MADE: dict[str, tuple[str, str, str | None]] = {
    "plain": (MP, part('"authenticity_token"', TOKEN) + "--B--\r\n", TOKEN),
    "unquoted-name": (MP, part("authenticity_token", TOKEN) + "--B--\r\n", TOKEN),
    "duplicate": (MP, part(f'"{FIELD}"', TOKEN) + part(f'"{FIELD}"', OTHER) + "--B--\r\n", None),
    "field-after-file": (
        MP,
        part('"f"', "x" * 5000, '; filename="a.bin"') + part(f'"{FIELD}"', TOKEN) + "--B--\r\n",
        TOKEN,
    ),
    "token-after-file-named-token": (
        MP,
        part(f'"{FIELD}"', "x", '; filename="a"') + part(f'"{FIELD}"', TOKEN) + "--B--\r\n",
        None,
    ),
    "array-field": (MP, part(f'"{FIELD}[]"', TOKEN) + "--B--\r\n", None),
    "quoted-name-with-escaped-quote": (
        MP,
        part('"authenticity_token\\""', OTHER) + part(f'"{FIELD}"', TOKEN) + "--B--\r\n",
        TOKEN,
    ),
    "extended-name-parameter-ignored": (
        MP,
        part(f"\"{FIELD}\"; name*=UTF-8''x", TOKEN) + "--B--\r\n",
        TOKEN,
    ),
    "two-dispositions": (
        MP,
        f'--B\r\nContent-Disposition: form-data; name="{FIELD}"\r\n'
        f'Content-Disposition: form-data; name="x"\r\n\r\n{TOKEN}\r\n--B--\r\n',
        None,
    ),
    "lowercase-header": (
        MP,
        f'--B\r\ncontent-disposition: form-data; name="{FIELD}"\r\n\r\n{TOKEN}\r\n--B--\r\n',
        TOKEN,
    ),
    "odd-boundary": (
        'multipart/form-data; boundary="a\'()+_,-./:=? z"',
        part(f'"{FIELD}"', TOKEN, boundary="a'()+_,-./:=? z") + "--a'()+_,-./:=? z--\r\n",
        TOKEN,
    ),
    "boundary-in-value": (MP, part(f'"{FIELD}"', TOKEN + "--B") + "--B--\r\n", TOKEN + "--B"),
    "no-close-delimiter": (MP, part(f'"{FIELD}"', TOKEN), None),
    "urlencoded": (FORM, f"a=1&{FIELD}={TOKEN}", TOKEN),
    "urlencoded-semicolon-is-no-separator": (FORM, f"{FIELD}={TOKEN}&a=1;{FIELD}={OTHER}", TOKEN),
    "urlencoded-encoded-name": (FORM, f"authenticity%5Ftoken={TOKEN}", TOKEN),
    "urlencoded-plus-in-name": (FORM, f"authenticity_token+={TOKEN}", None),
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(HAND_MADE))
async def test_hand_made_bodies_agree_or_are_refused(name: str) -> None:
    content_type, body, expected = HAND_MADE[name]
    accepted = await check_agreement(content_type.encode(), body.encode())
    assert (None if expected is None else expected.encode()) == accepted


@pytest.mark.anyio
async def test_utf16_names_are_read_as_starlette_reads_them() -> None:
    """With charset=utf-16 Starlette decodes part names and values in UTF-16, so the part
    named in UTF-16 is the field and the one named in ASCII is not; so do we."""
    name = FIELD.encode("utf-16")
    body = (
        b'--B\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n'
        + TOKEN.encode("utf-16") + b"\r\n"
        + part(f'"{FIELD}"', OTHER).encode() + b"--B--\r\n"
    )  # fmt: skip
    ct = b"multipart/form-data; boundary=B; charset=utf-16"
    assert [TOKEN] == await starlette_values(ct, body)
    assert TOKEN.encode() == await check_agreement(ct, body)


names = st.sampled_from(
    [f'"{FIELD}"', f'"{FIELD}"', FIELD, f'"{FIELD}[]"', '"a"', '"Authenticity_token"',
     f'"{FIELD} "', f"'{FIELD}'", '"authenticity%5Ftoken"', f'"{FIELD}\\""']
)  # fmt: skip
values = st.sampled_from([TOKEN, OTHER, "", "x--B", TOKEN + "\r\n--B"])
extras = st.sampled_from(["", '; filename="a.txt"', "; filename=", f'; name="{FIELD}"'])


@st.composite
def multipart_bodies(draw: st.DrawFn) -> bytes:
    out = ""
    for _ in range(draw(st.integers(0, 4))):
        header = draw(st.sampled_from(["Content-Disposition", "content-disposition", "X-A"]))
        disposition = draw(st.sampled_from(["form-data", "attachment", "FORM-DATA"]))
        out += (
            f"--B\r\n{header}: {disposition}; name={draw(names)}{draw(extras)}\r\n\r\n"
            f"{draw(values)}\r\n"
        )
    out += draw(st.sampled_from(["--B--\r\n", "--B--", "", "--B\r\n", "junk"]))
    return draw(st.sampled_from(["", "\r\n", "preamble\r\n"])).encode() + out.encode()


@st.composite
def urlencoded_bodies(draw: st.DrawFn) -> bytes:
    keys = st.sampled_from([FIELD, "authenticity%5Ftoken", f"{FIELD}%5B%5D", "a", "a+b", ""])
    sep = st.sampled_from(["&", ";", "&&"])
    fields = draw(st.lists(st.tuples(keys, values), max_size=4))
    return "".join(f"{k}={v}{draw(sep)}" for k, v in fields).encode()


@pytest.mark.anyio
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(multipart_bodies(), urlencoded_bodies(), st.binary(max_size=200)),
    content_type=st.sampled_from(
        [MP, FORM, MP + "; charset=latin-1", 'multipart/form-data; boundary="B"']
    ),
)
async def test_generated_bodies_agree_or_are_refused(body: bytes, content_type: str) -> None:
    await check_agreement(content_type.encode(), body)


# -- the whole stack: our check in front of Starlette's form, the body streamed in chunks --


def _echo_app() -> Starlette:
    async def token(request: Request) -> PlainTextResponse:
        return PlainTextResponse(csrf_token(request.scope))

    async def submit(request: Request) -> JSONResponse:
        async with request.form() as form:
            seen = [v if isinstance(v, str) else "<file>" for v in form.getlist(FIELD)]
        return JSONResponse(seen)

    return Starlette(routes=[Route("/token", token), Route("/submit", submit, methods=["POST"])])


@pytest.mark.anyio
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(multipart_bodies(), urlencoded_bodies()),
    content_type=st.sampled_from([MP, FORM]),
    chunk=st.integers(1, 64),
)
@example(
    body=(
        part(f'"{FIELD}"', TOKEN)
        + part('"f"', "x" * 50, '; filename="a"')
        + part(f'"{FIELD}"', OTHER)
        + "--B--\r\n"
    ).encode(),
    content_type=MP,
    chunk=16,
)
@example(
    body=f"{FIELD}={TOKEN}&a=xxxxxxxxxxxxxxxx&{FIELD}={OTHER}".encode(), content_type=FORM, chunk=5
)
async def test_starlette_behind_the_check_sees_only_the_checked_token(
    body: bytes, content_type: str, chunk: int
) -> None:
    """With the read-ahead shrunk to 8 bytes (so a body streams to the app right after the
    first token field, as a large upload does), a request that passes the check reaches
    Starlette with exactly the one token that was checked; otherwise it is refused."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(forms, "_SPILL_AT", 8)
        app = SessionMiddleware(
            CSRFMiddleware(_echo_app(), max_body_size=4096), secret_key_base=SECRET
        )
        async with client(app) as http:
            token = (await http.get("/token")).text
            sent = body.replace(TOKEN.encode(), token.encode())

            async def pieces() -> AsyncIterator[bytes]:
                for at in range(0, len(sent), chunk):
                    yield sent[at : at + chunk]

            headers = {"content-type": content_type}
            response = await http.post("/submit", content=pieces(), headers=headers)
    if response.status_code == 200:
        assert [token] == response.json()
    else:
        assert response.status_code in (400, 403, 413)
