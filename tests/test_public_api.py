from __future__ import annotations

import importlib
import inspect
import types

import pytest

import asgisession


def test_all_is_sorted() -> None:
    """asgisession.__all__ is kept sorted."""
    assert sorted(asgisession.__all__) == list(asgisession.__all__)


def test_all_has_no_duplicates() -> None:
    """Each public name is listed once."""
    assert len(set(asgisession.__all__)) == len(asgisession.__all__)


@pytest.mark.parametrize("name", asgisession.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    """`from asgisession import <name>` works for every name in __all__."""
    module = importlib.import_module("asgisession")
    assert hasattr(module, name)
    namespace: dict[str, object] = {}
    exec(f"from asgisession import {name}", namespace)  # noqa: S102 - fixed names from __all__
    assert getattr(asgisession, name) is namespace[name]


def test_all_is_complete() -> None:
    """Every public attribute of the package, other than submodules, is in __all__."""
    public = {
        name
        for name, value in vars(asgisession).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set() == public - set(asgisession.__all__)


def _own_public_classes() -> list[str]:
    names = []
    for name in asgisession.__all__:
        value = getattr(asgisession, name)
        if inspect.isclass(value) and value.__module__.startswith("asgisession"):
            names.append(name)
    return names


def test_there_are_public_classes_to_check() -> None:
    """The docstring check below covers the core classes (it is not vacuous)."""
    assert {"CookieOptions", "KeyGenerator", "Keyring", "SessionMiddleware"} <= set(
        _own_public_classes()
    )


@pytest.mark.parametrize("name", _own_public_classes())
def test_public_classes_have_their_own_docstring(name: str) -> None:
    """Each public class has a docstring of its own, not an inherited or generated one."""
    cls = getattr(asgisession, name)
    doc = vars(cls).get("__doc__")
    assert isinstance(doc, str)
    assert doc.strip()
    assert not doc.startswith(f"{cls.__name__}("), "dataclass-generated signature, not a doc"
