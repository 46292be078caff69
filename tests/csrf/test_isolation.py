"""The CSRF unit tests run without any web framework: no FastAPI, Starlette or pydantic.

Two checks: an AST scan of every ``import`` in tests/csrf/ (inside functions too), and a
fresh interpreter that imports every module here with those packages made unimportable,
which also catches an import reached through a helper or the package itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
FRAMEWORKS = frozenset({"fastapi", "starlette", "pydantic"})


def _imported_roots(source: str) -> set[str]:
    """The top-level package of every absolute import in ``source``."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_scan_sees_an_import_inside_a_function() -> None:
    """The scan is not fooled by a framework imported lazily, the way tests used to."""
    source = "def app():\n    from starlette.routing import Route\n    import fastapi.params\n"
    assert {"starlette", "fastapi"} == _imported_roots(source)


def test_no_csrf_unit_test_imports_a_framework() -> None:
    """No module under tests/csrf/ imports FastAPI, Starlette or pydantic."""
    found = {
        path.name: sorted(_imported_roots(path.read_text()) & FRAMEWORKS)
        for path in sorted(HERE.glob("*.py"))
    }
    assert {name: [] for name in found} == found


def test_csrf_unit_tests_import_with_the_frameworks_unimportable() -> None:
    """Every module here, and what it imports, loads with the frameworks blocked."""
    modules = [f"tests.csrf.{path.stem}" for path in sorted(HERE.glob("*.py"))]
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {sorted(FRAMEWORKS)!r}:
            sys.modules[name] = None  # "import name" now raises ImportError
        for module in {modules!r}:
            importlib.import_module(module)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert 0 == done.returncode, done.stderr
