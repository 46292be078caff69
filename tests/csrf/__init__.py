"""Unit tests for asgisession.csrf, one module per package module; raw ASGI, no framework.

Nothing here may import FastAPI or Starlette (test_isolation.py checks it); the tests that
serve a real framework app are in tests/integration/test_csrf_frameworks.py.
"""
