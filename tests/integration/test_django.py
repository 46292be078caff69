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
    assert {"a": 1} == dict(inner)
    django_session.flush()
    assert {} == dict(inner)
    assert django_session.is_empty()


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_set_expiry_is_the_core_sessions(secret: str, store: str) -> None:
    """``request.session.set_expiry()`` did nothing in 0.1, then raised; now the core's."""
    from django.http import HttpRequest, JsonResponse
    from django.urls import path

    def expiry(request: HttpRequest, value: int) -> JsonResponse:
        try:
            request.session.set_expiry(value)
        except ValueError as exc:  # ExpiryTooLong: past the middleware's lifetime
            return JsonResponse({"error": str(exc)}, status=400)
        request.session["marked"] = value
        session = request.session
        return JsonResponse(
            {"age": session.get_expiry_age(), "close": session.get_expire_at_browser_close()}
        )

    django_app.urlpatterns.append(path("expiry/<int:value>", expiry))
    try:
        app = wrap(get_asgi_application(), secret, store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.get("/expiry/0")
            assert {"age": 14 * 24 * 3600, "close": True} == response.json()
            assert "max-age" not in response.headers["set-cookie"].lower()
            response = await c.get("/expiry/60")
            assert {"age": 60, "close": False} == response.json()
            assert "Max-Age=60" in response.headers["set-cookie"]
            assert 400 == (await c.get("/expiry/99999999")).status_code
    finally:
        django_app.urlpatterns.pop()
