"""bench/report.py: medians, ratios, the scaling exponent and the table, as data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import report


def run(tool: str, n: int, up: float, runtime: str = "netns", **extra: object) -> dict:
    return {
        "tool": tool,
        "runtime": runtime,
        "n": n,
        "shaped": False,
        "up_s": up,
        "teardown_s": up / 2,
        "probe": {"missing": []},
        **extra,
    }


def test_fit_exponent_recovers_the_power() -> None:
    assert report.fit_exponent({10: 0.1, 100: 1.0, 1000: 10.0}) == pytest.approx(1.0)
    assert report.fit_exponent({10: 0.01, 100: 1.0, 1000: 100.0}) == pytest.approx(2.0)
    assert report.fit_exponent({100: 1.0}) is None
    assert report.last_segment_exponent({10: 1.0, 100: 1.0, 1000: 10.0}) == pytest.approx(1.0)


def test_medians_skip_failed_runs_and_rows_give_ratios() -> None:
    runs = [
        run("pydistem", 100, 1.0),
        run("pydistem", 100, 3.0),
        run("pydistem", 100, 2.0),
        run("pydistem", 100, 99.0, error="exit 1"),
        run("pydistem", 100, 50.0, probe={"missing": ["10.150.0.1"]}),
        run("mininet", 100, 4.0, runtime="host"),
        run("floor", 100, 1.0),
    ]
    med = report.medians(runs)
    assert med[("pydistem", "netns", False)][100]["up_s"] == 2.0
    assert med[("pydistem", "netns", False)][100]["reps"] == 3
    rows = {r["series"]: r for r in report.rows(med)}
    assert rows["pydistem netns"]["vs_mininet"] == pytest.approx(0.5)
    assert rows["pydistem netns"]["vs_floor"] == pytest.approx(2.0)
    assert rows["pydistem netns"]["ms_per_vnode"] == pytest.approx(20.0)
    assert rows["mininet"]["vs_mininet"] is None
    assert rows["floor"]["vs_floor"] is None


def test_markdown_has_a_row_per_series_and_size_and_the_exponents() -> None:
    runs = [run("pydistem", n, n / 100) for n in (10, 100)] + [
        run("mininet", n, n / 50, runtime="host") for n in (10, 100)
    ]
    med = report.medians(runs)
    text = report.markdown(report.rows(med), report.exponents(med))
    assert "| pydistem netns | 10 | 1 | 0.10 |" in text
    assert "| mininet | 100 | 1 | 2.00 |" in text
    assert "| pydistem netns | 1.00 | 1.00 |" in text
