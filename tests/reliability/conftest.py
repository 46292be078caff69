"""Every test under tests/reliability/ carries the ``reliability`` marker (``-m reliability``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the items collected from this directory; other tests are left as they are."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.reliability)
