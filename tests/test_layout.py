"""The package's layering, checked from the source: storage never reaches up into sessions.

``asgisession/stores/`` holds byte adapters only. A store that imported the session, the
crypto, the serializer or a backend would tie storage to one session format and bring back
the import cycle the layout exists to prevent.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asgisession"

#: What a module under stores/ may import from the package: errors and types, and stores/.
STORES_MAY_IMPORT = ("asgisession.errors", "asgisession._types", "asgisession.stores")
#: The old import paths kept for one release (they re-export from backends/ and warn).
DEPRECATED_SHIMS = {"stores/cookie.py", "stores/server.py"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def package_imports(path: Path, module: str) -> set[str]:
    """Every ``asgisession`` module that ``module`` (source at ``path``) imports, absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            name = node.module or ""
            target = (f"{base}.{name}" if name else base) if node.level else name
            if node.module is None:
                found.update(f"{target}.{alias.name}" for alias in node.names)
            else:
                found.add(target)
    return {name for name in found if name.split(".")[0] == "asgisession"}


def store_modules() -> list[Path]:
    return sorted(
        path
        for path in (PACKAGE / "stores").rglob("*.py")
        if str(path.relative_to(PACKAGE)) not in DEPRECATED_SHIMS
    )


@pytest.mark.parametrize("path", store_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_stores_import_only_errors_types_and_stores(path: Path) -> None:
    upward = {
        name
        for name in package_imports(path, module_name(path))
        if not any(name == ok or name.startswith(ok + ".") for ok in STORES_MAY_IMPORT)
    }
    assert set() == upward, f"{path.name} reaches above stores/: {sorted(upward)}"


def test_the_check_sees_relative_imports(tmp_path: Path) -> None:
    """The checker itself: a relative import of the session from stores/ is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..session import Session\nfrom .. import crypto\nfrom .base import Store\n"
    )
    assert {
        "asgisession.session",
        "asgisession.crypto",
        "asgisession.stores.base",
    } == package_imports(probe, "asgisession.stores.probe")


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("asgisession.backend", "asgisession.backends", "SessionBackend"),
        ("asgisession.stores.cookie", "asgisession.backends", "CookieBackend"),
        ("asgisession.stores.server", "asgisession.backends", "ServerBackend"),
    ],
)
def test_old_import_paths_work_and_warn(old: str, new: str, name: str) -> None:
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert getattr(importlib.import_module(new), name) is getattr(module, name)
