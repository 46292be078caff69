"""Peers' keyword names, missing libraries and misuse of a source: each error says the fix."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import itsdangerous
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgisession import Rotation, SessionMiddleware
from asgisession._peer_names import PEER_NAMES
from asgisession.errors import ConfigurationError, InvalidMessage
from asgisession.migrate import DjangoSignedCookies, FlaskCookies, StarletteCookies
from asgisession.stores import MemoryStore

from .helpers import Recorder, send_cookie, target

SECRET = "c2f1e0d9b8a7968574635241302f1e0d9b8a7968574635241302f1e0dc3b2a1"


async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ("secret_key", "secret_key_base="),
        ("session_cookie", "cookie_name="),
        ("same_site", "samesite="),
        ("https_only", "secure="),
        ("cookie_same_site", "samesite="),
        ("cookie_domain", "domain="),
        ("rolling", "idle_timeout="),
        ("secret", "secret_key_base="),
    ],
)
def test_a_peers_keyword_raises_a_type_error_naming_ours(theirs: str, ours: str) -> None:
    options: dict[str, Any] = {theirs: "x"}
    with pytest.raises(TypeError, match=f"got {theirs}= .*asgisession calls it {ours}"):
        SessionMiddleware(app, secret_key_base=SECRET, **options)


def test_starlettes_whole_call_names_the_first_of_its_keywords() -> None:
    """What Starlette's docs show, pasted as is."""
    with pytest.raises(TypeError, match=r"secret_key= \(Starlette's name\)"):
        SessionMiddleware(app, secret_key="...", session_cookie="session", https_only=True)  # type: ignore[call-arg]


def test_our_own_keywords_of_the_same_name_pass() -> None:
    """max_age, path and domain are Starlette's names and ours: accepted as they are."""
    middleware = SessionMiddleware(
        app, secret_key_base=SECRET, max_age=600, path="/app", domain="example.com"
    )
    assert (600, "/app", "example.com") == (
        middleware.backend.cookie.max_age,
        middleware.backend.cookie.path,
        middleware.backend.cookie.domain,
    )
    assert not set(PEER_NAMES) & {"max_age", "path", "domain", "httponly", "secure"}


@pytest.mark.parametrize("source", [StarletteCookies, FlaskCookies])
def test_without_itsdangerous_the_error_names_the_extra(
    source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "itsdangerous", None)
    with pytest.raises(ImportError, match=r"pip install 'asgisession\[migrate\]'") as caught:
        source(secret_key="old")
    assert "itsdangerous" == caught.value.name


def test_without_django_the_error_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "django.core.signing", None)
    monkeypatch.setitem(sys.modules, "django", None)
    with pytest.raises(ImportError, match="pip install Django"):
        DjangoSignedCookies(secret_key="old")


def test_a_source_alone_is_not_a_cookie_format() -> None:
    """It cannot write: the error shows the Rotation to put it in."""
    with pytest.raises(ConfigurationError, match=r"Rotation\(write='encrypted', read=\["):
        SessionMiddleware(
            app, secret_key_base=SECRET, cookie_format=StarletteCookies(secret_key="o")
        )
    with pytest.raises(ConfigurationError, match="only reads"):
        Rotation(write=FlaskCookies(secret_key="o"), read=["encrypted"])


@pytest.mark.parametrize("max_age", [0, -1, None, 1.5, True])
def test_max_age_is_whole_positive_seconds(max_age: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_age"):
        StarletteCookies(secret_key="o", max_age=max_age)


def test_the_secret_stays_out_of_the_repr() -> None:
    for source in (
        StarletteCookies(secret_key="hunter2-hunter2"),
        FlaskCookies(secret_key="hunter2-hunter2"),
        DjangoSignedCookies(secret_key="hunter2-hunter2"),
    ):
        assert "hunter2" not in repr(source)
        assert "hunter2" not in repr(Rotation(write="encrypted", read=[source]))


@pytest.mark.anyio
async def test_a_payload_as_long_as_a_session_id_is_not_taken_for_one(secret: str) -> None:
    """A migrated session whose JSON is 32 bytes (an id's length) still opens as data."""
    data = {"user_id": "abcdefghijklmnopqr"}
    raw = json.dumps(data, separators=(",", ":")).encode()
    assert 32 == len(raw)
    # Signed as Starlette signs (its own JSON has spaces; our serializer's has none).
    value = itsdangerous.TimestampSigner("old").sign(base64.b64encode(raw)).decode()
    recorder = Recorder()
    store = MemoryStore()
    rotation = Rotation(write="encrypted", read=[StarletteCookies(secret_key="old")])
    await send_cookie(target(recorder, secret, store, rotation), "session", value)
    assert [data] == recorder.seen


def test_importing_the_sources_imports_neither_library() -> None:
    """itsdangerous and Django load when a source is made, not when asgisession.migrate is."""
    code = (
        "import sys, asgisession, asgisession.migrate\n"
        "print(sorted(m for m in ('itsdangerous', 'django') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (0, "[]") == (result.returncode, result.stdout.strip()), result.stderr


def test_the_migrate_extra_brings_itsdangerous() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["migrate"]
    assert ["itsdangerous"] == [re.split(r"[<>=!~ ]", spec)[0] for spec in extra]


COOKIE_TEXT = st.text(
    alphabet=st.sampled_from("AZaz09-_.:=+/%!\"' \\é\x00"), min_size=0, max_size=80
)


@settings(max_examples=300, deadline=None)
@given(value=COOKIE_TEXT)
def test_no_value_makes_a_source_raise_anything_but_invalid_message(value: str) -> None:
    """Whatever a client sends, each source refuses it with a reason (never a 500)."""
    for source in (
        StarletteCookies(secret_key="old"),
        FlaskCookies(secret_key="old"),
        DjangoSignedCookies(secret_key="old"),
    ):
        with contextlib.suppress(InvalidMessage):
            source.open(value, now=1_700_000_000)
