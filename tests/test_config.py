"""Tests for asgisession.config: reading secret_key_base from the environment or a file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asgisession import ConfigurationError, SessionMiddleware, secret_key_base_from_env
from asgisession._types import Receive, Scope, Send

A = "a1" * 16 + "0123456789abcdef" * 2
B = "b2" * 16 + "fedcba9876543210" * 2


def test_single_secret_from_variable() -> None:
    """One secret in $SECRET_KEY_BASE comes back as a one-item list."""
    assert secret_key_base_from_env(environ={"SECRET_KEY_BASE": f"  {A}\n"}) == [A]


@pytest.mark.parametrize("separator", [",", " ", "\n", " , ", "\t"])
def test_rotation_list_newest_first(separator: str) -> None:
    """Several secrets, separated by commas or whitespace, keep their order."""
    value = f"{A}{separator}{B}"
    assert secret_key_base_from_env(environ={"SECRET_KEY_BASE": value}) == [A, B]


def test_custom_variable_name() -> None:
    """The variable name is a parameter."""
    assert secret_key_base_from_env("APP_SECRET", environ={"APP_SECRET": B}) == [B]


def test_file_variant(tmp_path: Path) -> None:
    """$NAME_FILE names a file (a mounted secret) holding the same format."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{A}\n{B}\n", encoding="utf-8")
    env = {"SECRET_KEY_BASE_FILE": str(secret_file)}
    assert secret_key_base_from_env(environ=env) == [A, B]


def test_missing_says_how_to_make_one() -> None:
    """With neither variable set, the error says how to generate a secret and where to put it."""
    with pytest.raises(
        ConfigurationError, match=r"python -m asgisession secret.*never in the code"
    ):
        secret_key_base_from_env(environ={})


def test_both_set_is_refused(tmp_path: Path) -> None:
    """Setting both the variable and the file variable is ambiguous, so it is refused."""
    env = {"SECRET_KEY_BASE": A, "SECRET_KEY_BASE_FILE": str(tmp_path / "x")}
    with pytest.raises(ConfigurationError, match="keep one"):
        secret_key_base_from_env(environ=env)


def test_unreadable_file(tmp_path: Path) -> None:
    """A file that cannot be read is named in the error."""
    missing = tmp_path / "missing"
    with pytest.raises(ConfigurationError, match="cannot be read"):
        secret_key_base_from_env(environ={"SECRET_KEY_BASE_FILE": str(missing)})


@pytest.mark.parametrize("value", ["", "   ", " , \n"])
def test_empty_value(value: str) -> None:
    """A variable holding only separators is refused."""
    with pytest.raises(ConfigurationError, match="empty"):
        secret_key_base_from_env(environ={"SECRET_KEY_BASE": value})


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `environ`, the process environment is read."""
    monkeypatch.setenv("SECRET_KEY_BASE", B)
    monkeypatch.delenv("SECRET_KEY_BASE_FILE", raising=False)
    assert secret_key_base_from_env() == [B]


def test_result_feeds_the_middleware() -> None:
    """The list is what SessionMiddleware takes; a weak secret in it is refused there."""

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    middleware = SessionMiddleware(
        app, secret_key_base=secret_key_base_from_env(environ={"SECRET_KEY_BASE": f"{A},{B}"})
    )
    assert len(middleware.keyring.generators) == 2
    with pytest.raises(ConfigurationError, match="placeholder"):
        SessionMiddleware(
            app,
            secret_key_base=secret_key_base_from_env(
                environ={"SECRET_KEY_BASE": "changeme-changeme-changeme-changeme-1"}
            ),
        )


# --- every missing or weak secret says how to make one ---------------------------------

MAKE_ONE = "python -m asgisession secret"


@pytest.mark.parametrize(
    "make_error",
    [
        lambda: secret_key_base_from_env(environ={}),
        lambda: secret_key_base_from_env(environ={"SECRET_KEY_BASE": " ,\n"}),
        lambda: SessionMiddleware(_app, secret_key_base=[]),
        lambda: SessionMiddleware(_app, secret_key_base="s3cr3t"),
        lambda: SessionMiddleware(_app, secret_key_base="changeme-" + A),
        lambda: SessionMiddleware(_app, secret_key_base="ab" * 20),
        lambda: SessionMiddleware(_app, secret_key_base="abcabc" * 8),
    ],
    ids=["not-set", "empty-variable", "empty-list", "short", "placeholder", "few-chars", "pattern"],
)
def test_every_secret_error_names_the_secret_command(make_error: Callable[[], object]) -> None:
    """Each way of having no usable secret points at the CLI's command, not a `python -c` line."""
    with pytest.raises(ConfigurationError) as excinfo:
        make_error()
    message = str(excinfo.value)
    assert MAKE_ONE in message
    assert "python -c" not in message


def test_the_suggested_command_makes_a_secret_the_middleware_takes() -> None:
    """The command the errors name works, and what it prints passes the secret checks."""
    result = subprocess.run(
        [sys.executable, "-m", "asgisession", "secret"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    secret = result.stdout.strip()
    assert 128 == len(secret)
    SessionMiddleware(_app, secret_key_base=secret)


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("never called")
