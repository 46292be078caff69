"""Thin adapters for frameworks that bring a session object of their own.

Each submodule imports its framework when it is itself imported, never before, so
``import asgisession`` needs none of them. Importing one whose framework is missing raises an
:class:`ImportError` that names the package to install.

- :mod:`asgisession.integrations.fastapi`: ``Depends``-ready session and CSRF-token providers.
- :mod:`asgisession.integrations.litestar`: ``request.set_session``/``clear_session`` support.
- :mod:`asgisession.integrations.quart`: a Quart ``SessionInterface``.
- :mod:`asgisession.integrations.django`: a Django session engine (``SESSION_ENGINE``), with
  :mod:`~asgisession.integrations.django_csrf` for asgisession's CSRF in Django.

Starlette and raw ASGI need no adapter: ``request.session`` and ``scope["session"]`` are
asgisession's :class:`~asgisession.session.Session` as they are.
"""
