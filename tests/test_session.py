# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""Tests for asgisession.session: the lazy, change-tracking Session mapping."""

from __future__ import annotations

import collections.abc
import json
from typing import Any

import pytest

from asgisession import RejectReason, Session, SessionNotLoaded
from asgisession.session import LoadedState, control_of


class FakeLoader:
    """A sync or async loader that hands out a fixed state and counts its calls."""

    def __init__(self, data: dict[str, Any] | None = None, **state: Any) -> None:
        self.data = {} if data is None else data
        self.state = state
        self.calls = 0

    def __call__(self) -> LoadedState:
        self.calls += 1
        return LoadedState(data=self.data, **self.state)

    async def load(self) -> LoadedState:
        return self()


def make(data: dict[str, Any] | None = None, **state: Any) -> tuple[Session, FakeLoader]:
    loader = FakeLoader(data, **state)
    return Session(loader), loader


def test_loader_not_called_before_first_access() -> None:
    """Building a session loads nothing; the first read loads exactly once."""
    session, loader = make({"user": "alice"})
    assert 0 == loader.calls
    assert not session.loaded
    assert not control_of(session).accessed

    assert "alice" == session["user"]
    assert "alice" == session.get("user")
    assert 1 == loader.calls
    assert session.loaded


def test_read_marks_accessed_only() -> None:
    """Reading a scalar marks the session accessed, not modified, exposed or regenerated."""
    session, _ = make({"n": 1})
    assert 1 == session["n"]
    control = control_of(session)
    assert (True, False, False, False) == (
        control.accessed, session.modified, control.exposed, control.regenerated,
    )  # fmt: skip


@pytest.mark.parametrize("probe", ["len", "iter", "contains", "get_missing"])
def test_every_read_path_marks_accessed(probe: str) -> None:
    """len, iteration, `in` and get() of a missing key all load and mark accessed."""
    session, loader = make({"a": 1})
    if probe == "len":
        len(session)
    elif probe == "iter":
        list(session)
    elif probe == "contains":
        _ = "a" in session
    else:
        session.get("missing")
    assert (True, 1) == (control_of(session).accessed, loader.calls)
    assert not session.modified


def test_setitem_marks_modified() -> None:
    """Setting a key marks the session modified."""
    session, _ = make()
    session["user"] = "alice"
    assert session.modified
    assert {"user": "alice"} == dict(session)


def test_delitem_marks_modified() -> None:
    """Deleting a key marks the session modified; deleting a missing one raises KeyError."""
    session, _ = make({"a": 1})
    with pytest.raises(KeyError):
        del session["missing"]
    assert not session.modified
    del session["a"]
    assert session.modified


@pytest.mark.parametrize("value", [[1, 2], {"theme": "dark"}])
def test_reading_a_container_marks_exposed(value: Any) -> None:
    """Handing out a list or dict sets `exposed` (a nested change may follow), not `modified`."""
    session, _ = make({"v": value})
    session["v"]
    assert (True, False) == (control_of(session).exposed, session.modified)


def test_nested_mutation_is_flagged_through_exposed() -> None:
    """session["cart"].append(x) changes the loaded data and leaves `exposed` set for commit."""
    data: dict[str, Any] = {"cart": []}
    session, _ = make(data)
    session["cart"].append(1)
    assert control_of(session).exposed
    assert {"cart": [1]} == data


def test_reading_a_scalar_does_not_expose() -> None:
    """Strings, numbers, bools and None are immutable, so reading them does not expose."""
    session, _ = make({"s": "x", "i": 1, "f": 1.5, "b": True, "n": None})
    for key in ("s", "i", "f", "b", "n"):
        session[key]
    assert not control_of(session).exposed


@pytest.mark.parametrize("key", [1, None, b"user", ("a",)])
def test_non_str_keys_are_rejected(key: Any) -> None:
    """A non-str key raises TypeError and changes nothing."""
    session, _ = make()
    with pytest.raises(TypeError, match="session keys must be str"):
        session[key] = "x"
    assert not session.modified
    assert {} == dict(session)


def test_update_with_non_str_key_is_rejected() -> None:
    """MutableMapping.update goes through __setitem__ and refuses non-str keys too."""
    session, _ = make()
    with pytest.raises(TypeError):
        session.update({1: "x"})  # type: ignore[dict-item]


def test_clear_on_empty_session_is_not_a_change() -> None:
    """clear() on an empty session does not mark it modified (no deletion cookie needed)."""
    session, _ = make()
    session.clear()
    assert control_of(session).accessed
    assert not session.modified


def test_clear_on_non_empty_session_is_a_change() -> None:
    """clear() with data empties it and marks it modified."""
    session, _ = make({"a": 1})
    session.clear()
    assert 0 == len(session)
    assert session.modified


def test_regenerate_keeps_data() -> None:
    """regenerate() keeps the data and marks the session regenerated and modified."""
    session, _ = make({"user": "alice"})
    session.regenerate()
    assert {"user": "alice"} == dict(session)
    assert (True, True) == (control_of(session).regenerated, session.modified)


def test_reset_drops_data() -> None:
    """reset() drops every key and marks the session regenerated and modified."""
    session, _ = make({"user": "alice", "cart": [1]})
    session.reset()
    assert {} == dict(session)
    assert (True, True) == (control_of(session).regenerated, session.modified)


def test_reset_then_write() -> None:
    """Data written after reset() is kept."""
    session, _ = make({"user": "alice"})
    session.reset()
    session["user"] = "bob"
    assert {"user": "bob"} == dict(session)


def test_modified_can_be_forced() -> None:
    """Setting `modified = True` forces a write and loads the session."""
    session, loader = make()
    session.modified = True
    assert (True, 1) == (session.modified, loader.calls)


def test_no_sync_loader_raises_session_not_loaded() -> None:
    """Without a sync loader, touching the data raises SessionNotLoaded with a hint."""
    session = Session(None, FakeLoader({"a": 1}).load)
    with pytest.raises(SessionNotLoaded, match=r"await session\.load"):
        session["a"]
    with pytest.raises(SessionNotLoaded):
        session["a"] = 2
    assert not session.loaded


def test_session_not_loaded_is_a_runtime_error() -> None:
    """SessionNotLoaded is also a RuntimeError, so generic handlers catch it."""
    with pytest.raises(RuntimeError):
        len(Session())


@pytest.mark.anyio
async def test_async_load_then_sync_access() -> None:
    """`await session.load()` uses the async loader once; sync access then works."""
    loader = FakeLoader({"user": "alice"})
    session = Session(None, loader.load)
    await session.load()
    await session.load()
    assert 1 == loader.calls
    assert "alice" == session["user"]
    session["user"] = "bob"
    assert session.modified


@pytest.mark.anyio
async def test_async_load_falls_back_to_sync_loader() -> None:
    """With only a sync loader, `await session.load()` uses it."""
    session, loader = make({"a": 1})
    await session.load()
    assert (True, 1) == (session.loaded, loader.calls)


def test_repr_does_not_load() -> None:
    """repr() of an unloaded session says so without calling the loader."""
    session, loader = make({"secret": "x"})
    assert "<Session (not loaded)>" == repr(session)
    assert (0, False) == (loader.calls, control_of(session).accessed)


def test_repr_after_load_shows_data() -> None:
    """repr() of a loaded session shows its data."""
    session, _ = make({"a": 1})
    len(session)
    assert "<Session {'a': 1}>" == repr(session)


def test_dict_and_json_dumps() -> None:
    """dict(session) is a real dict, which json.dumps accepts."""
    session, _ = make({"user": "alice", "cart": [1, 2]})
    as_dict = dict(session)
    assert {"user": "alice", "cart": [1, 2]} == as_dict
    assert '{"user": "alice", "cart": [1, 2]}' == json.dumps(as_dict)


def test_json_dumps_of_the_session_itself_fails() -> None:
    """The session is a mapping, not a dict: json.dumps(session) needs dict(session)."""
    session, _ = make({"a": 1})
    with pytest.raises(TypeError):
        json.dumps(session)


def test_is_a_mutable_mapping() -> None:
    """Session is a MutableMapping, so mapping helpers (setdefault, pop, update) work."""
    session, _ = make()
    assert isinstance(session, collections.abc.MutableMapping)
    assert [] == session.setdefault("cart", [])
    session.update(user="alice")
    assert "alice" == session.pop("user")
    assert {"cart": []} == dict(session)


def test_state_facts_come_from_the_loader() -> None:
    """is_new and rejection report what the loader found."""
    fresh, _ = make(had_cookie=True, rejection=RejectReason.BAD_TAG)
    assert (True, RejectReason.BAD_TAG) == (fresh.is_new, fresh.rejection)
    known, _ = make({"a": 1}, serialized=b'{"a":1}', had_cookie=True)
    assert (False, None) == (known.is_new, known.rejection)


def test_raw_does_not_expose() -> None:
    """raw() (for backends) returns the data without marking it exposed."""
    session, _ = make({"cart": [1]})
    assert {"cart": [1]} == control_of(session).data()
    assert not control_of(session).exposed


def test_regenerate_drops_identity_bound_secrets() -> None:
    """regenerate() keeps the data but drops the CSRF secret, which belongs to the identity."""
    session = Session(lambda: LoadedState(data={"user": "a", "_csrf_token": "old"}))
    session.regenerate()
    assert {"user": "a"} == dict(session)


def test_before_commit_callbacks_run_once() -> None:
    """Callbacks registered with before_commit run once, in order, then are forgotten."""
    session = Session(lambda: LoadedState())
    calls: list[str] = []
    control_of(session).before_commit(lambda s: calls.append("a"))
    control_of(session).before_commit(lambda s: s.__setitem__("b", 1))
    control_of(session).run_before_commit()
    control_of(session).run_before_commit()
    assert ["a"] == calls
    assert {"b": 1} == dict(session)


# -- the commit decision -----------------------------------------------------------------------


def test_commit_is_none_for_an_untouched_session() -> None:
    """A session the app never touched has nothing to commit, and is not loaded for it."""
    session, loader = make({"n": 1})
    assert control_of(session).commit() is None
    assert 0 == loader.calls


def test_commit_of_a_read() -> None:
    """Reading a scalar changes nothing, and costs no serialisation."""
    session, _ = make({"n": 1}, serialized=b'{"n":1}')
    assert 1 == session["n"]
    commit = control_of(session).commit()
    assert commit is not None
    assert (False, False, False, None) == (
        commit.changed, commit.regenerated, commit.cleared, commit.payload,
    )  # fmt: skip
    assert {"n": 1} == commit.data


@pytest.mark.parametrize(("mutate", "changed"), [(True, True), (False, False)])
def test_commit_compares_handed_out_values(mutate: bool, changed: bool) -> None:
    """A handed-out list is re-serialised once; the payload is kept for the backend."""
    session, _ = make({"cart": [1]}, serialized=b'{"cart":[1]}')
    cart = session["cart"]
    if mutate:
        cart.append(2)
    commit = control_of(session).commit()
    assert commit is not None
    assert changed == commit.changed
    expected = b'{"cart":[1,2]}' if mutate else b'{"cart":[1]}'
    assert expected == commit.payload
    assert expected == commit.serialized()


def test_commit_after_regenerate_and_reset() -> None:
    """regenerate() is a change with a new identity; reset() also leaves nothing to store."""
    session, _ = make({"n": 1}, serialized=b'{"n":1}')
    session.regenerate()
    commit = control_of(session).commit()
    assert commit is not None
    assert (True, True, False) == (commit.changed, commit.regenerated, commit.cleared)
    session.reset()
    commit = control_of(session).commit()
    assert commit is not None
    assert (True, True, True) == (commit.changed, commit.regenerated, commit.cleared)


def test_commit_serialises_on_demand() -> None:
    """A plain write leaves the payload to the backend, which serialises the data once."""
    session, _ = make({})
    session["n"] = 2
    commit = control_of(session).commit()
    assert commit is not None
    assert (True, None) == (commit.changed, commit.payload)
    assert b'{"n":2}' == commit.serialized()


# -- what an app sees ----------------------------------------------------------------------------

APP_NAMES = {
    "load", "regenerate", "reset", "modified", "is_new", "rejection", "loaded",
    "set_expiry", "expiry_age", "expiry_date", "expires_at_browser_close", "log_id",
}  # fmt: skip
MOVED = [
    "accessed", "changes", "exposed", "regenerated", "resets", "state", "raw",
    "attach", "before_commit", "run_before_commit", "fail_with",
]  # fmt: skip


def test_public_names_are_what_an_app_calls() -> None:
    """Besides the mapping, Session's own public names are the app's; the rest warns."""
    mapping = set(dir(collections.abc.MutableMapping))
    own = {name for name in dir(Session) if not name.startswith("_")} - mapping
    assert APP_NAMES | set(MOVED) == own


@pytest.mark.parametrize("name", MOVED)
def test_moved_names_warn_and_still_work(name: str) -> None:
    """The names of 0.1 that moved to SessionControl work for one release, with a warning."""
    session, _ = make({"n": 1})
    args: dict[str, tuple[Any, ...]] = {
        "attach": (LoadedState(),),
        "before_commit": (lambda s: None,),
        "fail_with": (RuntimeError("down"),),
    }
    message = f"Session.{name} is deprecated"
    if name in ("raw", "run_before_commit", *args):
        with pytest.warns(DeprecationWarning, match=message) as record:
            getattr(session, name)(*args.get(name, ()))
    else:
        with pytest.warns(DeprecationWarning, match=message) as record:
            getattr(session, name)
    assert __file__ == record[0].filename  # the warning points at the caller
