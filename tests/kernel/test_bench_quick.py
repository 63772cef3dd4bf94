"""``bench/run.py --quick`` runs end to end on the real kernel: pydistem, Mininet and the
kernel floor each deploy 10 and 100 vnodes, every vnode answers the probe, the table,
the raw runs and the plots are written, the headline line is printed, and nothing is
left behind. Performance is NOT asserted here (this machine is shared): see
docs/performance.md for the numbers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_runs_and_cleans(tmp_path: Path, kernel_unchanged) -> None:
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--no-lock"]
    proc = subprocess.run(
        [*argv, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    head = re.search(r"^ratio_vs_mininet_netns_N100=(\d+\.\d+)$", proc.stdout, re.M)
    assert head, proc.stdout[-2000:]
    assert float(head.group(1)) > 0
    table = (tmp_path / "results.md").read_text()
    for series in ("pydistem netns", "mininet", "floor"):
        assert f"| {series} | 100 |" in table
    runs = json.loads((tmp_path / "runs.json").read_text())["runs"]
    assert len(runs) == 6
    for run in runs:
        assert not run.get("error"), run
        assert run["probe"]["answered"] == run["n"], run
        assert run["up_s"] > 0 and run["teardown_s"] > 0
    for png in ("up_time_vs_n.png", "teardown_vs_n.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
