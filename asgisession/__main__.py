"""``python -m asgisession``: see :mod:`asgisession.cli`."""

from .cli import main

raise SystemExit(main())
