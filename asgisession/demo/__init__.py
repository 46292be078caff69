"""The demo app served by ``python -m asgisession demo``: asgisession at work, in one page.

:mod:`.app` is the app (plain ASGI, read it as an example of use), :mod:`.page` its HTML,
:mod:`.serve` the command that picks a store and serves it with uvicorn.
"""
