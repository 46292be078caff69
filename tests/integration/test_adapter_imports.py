# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""The adapters import their framework lazily and name the package when it is missing."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

#: adapter module -> (a module it imports first, the package to install)
ADAPTERS = {
    "fastapi": ("fastapi", "fastapi"),
    "litestar": ("litestar.connection", "litestar"),
    "quart": ("quart", "quart"),
    "django": ("asgiref.sync", "django"),
}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_missing_framework_names_the_package(adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked, package = ADAPTERS[adapter]
    name = f"asgisession.integrations.{adapter}"
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, blocked, None)  # makes `import blocked` fail
    with pytest.raises(ImportError, match=f"pip install {package}") as caught:
        importlib.import_module(name)
    assert name in str(caught.value)


def test_importing_asgisession_imports_no_framework() -> None:
    code = (
        "import sys, asgisession, asgisession.integrations; "
        "print(sorted(m for m in ('fastapi', 'litestar', 'quart', 'django', 'starlette') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "[]" == result.stdout.strip()
