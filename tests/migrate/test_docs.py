"""docs/migrating.md's second block runs as written, with the old apps' secrets set.

The recipe (the first block) needs nothing set and runs with every page's blocks
(tests/test_docs.py); the second reads the old apps' secrets from the environment, as an
app does, so it runs here, where they are set (the page marks it "not run" for that test).
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


@pytest.mark.parametrize("block", BLOCKS[1:], ids=["sources"])
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
