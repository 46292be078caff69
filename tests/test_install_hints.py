"""Every "install this" hint gives a pip command that works wherever asgisession came from.

asgisession is not on PyPI, so ``pip install 'asgisession[redis]'`` fails. Each hint names
the extra's own requirements (which install from the index, or are already satisfied),
plus the source checkout's ``pip install -e '.[extra]'``. Each is checked by making its
client missing for real (the import fails), and by handing its command to pip itself
(``--dry-run --no-index``: it must parse, and every requirement is satisfied here).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from asgisession import stores
from asgisession.cli import main

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="pyproject.toml is read with tomllib (3.11+)")


def extras() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        declared: dict[str, list[str]] = tomllib.load(file)["project"]["optional-dependencies"]
    return declared


def hide(module: str, adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import module`` (and its submodules) fail, and ``adapter`` import afresh."""
    for name in [name for name in sys.modules if name.partition(".")[0] == module]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, f"asgisession.stores.{adapter}", raising=False)


def store_hint(name: str, module: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ImportError the library raises for ``name`` when its client cannot be imported."""
    hide(module, name.removesuffix("Store").lower(), monkeypatch)
    with pytest.raises(ImportError) as info:
        getattr(stores, name)
    return str(info.value)


def demo_hint(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert 2 == main(["demo", "--store", "cookie"])
    return capsys.readouterr().err


def check(hint: str, extra: str) -> None:
    """The hint's command installs the extra's requirements; the checkout form names it."""
    found = re.search(r"(pip install [^(]+?) \(", hint)
    assert found is not None, hint
    argv = shlex.split(found.group(1))
    assert ["pip", "install"] == argv[:2]
    assert "asgisession" not in found.group(1)  # not on the index: never asked for
    assert extras()[extra] == argv[2:]
    assert f"in a source checkout, pip install -e '.[{extra}]'" in hint
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
         "--disable-pip-version-check", *argv[2:]],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "already satisfied" in done.stdout


@pytest.mark.parametrize(
    ("name", "module", "extra"),
    [
        ("RedisStore", "redis", "redis"),
        ("MemcachedStore", "aiomcache", "memcached"),
        ("PostgresStore", "asyncpg", "postgres"),
    ],
)
def test_a_missing_store_client_names_a_command_that_works(
    name: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hint = store_hint(name, module, monkeypatch)
    assert hint.startswith(f"{name} needs the {module!r} package, which is not installed: ")
    check(hint, extra)


def test_the_demo_without_uvicorn_names_a_command_that_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hint = demo_hint(monkeypatch, capsys)
    assert hint.startswith("asgisession: error: the demo is served by uvicorn")
    check(hint, "demo")


def test_the_demo_with_a_missing_store_client_exits_2_with_the_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secret: str
) -> None:
    monkeypatch.setenv("SECRET_KEY_BASE", secret)
    hide("redis", "redis", monkeypatch)
    assert 2 == main(["demo", "--store", "redis://127.0.0.1:1/0"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    check(err, "redis")


def test_the_demo_environment_has_every_store_client() -> None:
    """./scripts/demo installs the demo group: every store client is in it."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        group = tomllib.load(file)["dependency-groups"]["demo"]
    assert "ensure_venv demo" in (ROOT / "scripts" / "demo").read_text()
    for extra in ("redis", "memcached", "postgres", "demo"):
        for requirement in extras()[extra]:
            assert requirement in group
