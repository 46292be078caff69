"""docs/testing.md runs as written: each ```python block is run as a script of its own,
in a fresh directory, with REDIS_URL naming a real redis-server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .servers import LOOPBACK, ServerProcess

PAGE = Path(__file__).parents[1] / "docs" / "testing.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_page_has_blocks() -> None:
    assert len(BLOCKS) >= 5  # httpx, TestClient (twice), Quart, Django


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_block_runs(block: str, tmp_path: Path, redis_proc: ServerProcess) -> None:
    script = tmp_path / "block.py"
    script.write_text(block)
    env = {**os.environ, "REDIS_URL": f"redis://{LOOPBACK}:{redis_proc.port}/0"}
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
