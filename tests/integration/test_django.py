# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
"""examples/django_app.py: Django's ASGI handler, request.session through the adapter."""

from __future__ import annotations

import httpx
import pytest
from django.core.asgi import get_asgi_application

from asgisession.errors import ConfigurationError
from asgisession.integrations.django import DjangoSession
from asgisession.session import LoadedState, Session, control_of
from examples import django_app

from .contract import STORES, check_contract, wrap

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio only: Django's ASGI handler and asgiref run on asyncio."""
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_contract(secret: str, store: str) -> None:
    app = get_asgi_application()
    await check_contract(wrap(app, secret, store), server_side=store != "cookie")


@pytest.mark.anyio
async def test_example_create_app_serves_the_contract(secret: str) -> None:
    await check_contract(django_app.create_app(secret), server_side=False)


@pytest.mark.anyio
async def test_without_the_asgi_middleware_the_error_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Django's handler without asgisession around it: a 500 whose logged cause names the fix."""
    # django-stubs types the handler's scope as a dict, httpx's ASGI app takes a MutableMapping.
    transport = httpx.ASGITransport(app=get_asgi_application())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert 500 == (await c.get("/me")).status_code
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1]]
    assert any(isinstance(e, ConfigurationError) for e in errors)
    assert "SessionMiddleware" in str(errors[-1])


def test_session_base_interface_goes_to_asgisession() -> None:
    """Django's SessionBase methods read and write asgisession's session."""
    inner = Session()
    control_of(inner).attach(LoadedState(data={"a": 1}))
    django_session = DjangoSession(inner)
    assert 1 == django_session["a"]
    assert 1 == django_session.get("a")
    assert "a" in django_session
    django_session["b"] = 2
    assert 2 == django_session.setdefault("b", 3)
    assert 2 == django_session.pop("b")
    assert {"a": 1} == dict(inner)
    assert not django_session.is_empty()
    assert None is django_session.session_key
    django_session.cycle_key()
    assert control_of(inner).regenerated
    assert {"a": 1} == django_session.load()
    with pytest.raises(NotImplementedError, match="SESSION_ENGINE"):
        django_session.set_expiry(60)  # did nothing before: the lifetime is the middleware's
    assert {"a": 1} == dict(inner)
    django_session.flush()
    assert {} == dict(inner)
    assert django_session.is_empty()
