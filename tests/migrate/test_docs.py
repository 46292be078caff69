"""docs/migrating.md runs as written: each ```python block as a script of its own.

The recipe needs nothing set; the second block reads the old apps' secrets from the
environment, as an app does, so they are set here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).parents[2] / "docs" / "migrating.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_page_has_its_blocks() -> None:
    assert 2 == len(BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=["recipe", "sources"])
def test_block_runs(block: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block)
    env = {**os.environ, "FLASK_SECRET_KEY": "old flask", "DJANGO_SECRET_KEY": "old django"}
    env.pop("SECRET_KEY_BASE", None)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    if "asyncio.run" in block:
        assert "still logged in as ada" == result.stdout.strip()
