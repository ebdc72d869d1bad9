"""benchmarks/tree_memory.py: a forked child's shared pages count twice in summed RSS, once in PSS."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a parent touches 200 MB, forks a child that only reads them, both hold on for a second
FORKING = textwrap.dedent(
    """
    import os, time
    import numpy as np
    a = np.ones(25_000_000)  # 200 MB, written before the fork
    pid = os.fork()
    time.sleep(1.5)
    assert a.sum() == 25_000_000  # read, not written: the pages stay shared
    time.sleep(0.5)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    """
)


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux /proc only")
def test_shared_pages_count_once_in_pss_and_per_process_in_rss(tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(FORKING)
    tool = [sys.executable, str(ROOT / "benchmarks/tree_memory.py"), "--interval", "0.1"]
    out = subprocess.run(
        [*tool, "--", sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rss, pss = (float(v) for v in re.findall(r"summed (?:RSS|PSS) (\d+) MB", out))
    assert "up to 2 processes" in out, out
    assert rss > 2 * 190, out  # the 200 MB counted in parent and child
    assert 190 < pss < 1.5 * 200 + 60, out  # counted once (plus the interpreters)
