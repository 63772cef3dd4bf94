"""Turn the runs of bench/run.py into numbers: medians, ratios, the scaling exponent,
a Markdown table and PNG plots. Pure functions except :func:`plot`.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Key = tuple[str, str, bool]  # (tool, runtime, shaped)
#: the tool name of multihost.py's runs: reported in a table of their own, by host count
MULTIHOST = "multihost"


def series_name(key: Key) -> str:
    tool, runtime, shaped = key
    name = tool if tool == "mininet" or tool == "floor" else f"{tool} {runtime}"
    return name + (" + bw limit" if shaped else "")


def medians(runs: Iterable[dict[str, Any]]) -> dict[Key, dict[int, dict[str, float]]]:
    """(tool, runtime, shaped) -> N -> median of every numeric field over the reps.

    Runs that failed (an ``error``, or vnodes that never answered) are left out.
    """
    groups: dict[Key, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r.get("error") or r.get("probe", {}).get("missing") or r["tool"] == MULTIHOST:
            continue
        groups[(r["tool"], r["runtime"], bool(r["shaped"]))][int(r["n"])].append(r)
    out: dict[Key, dict[int, dict[str, float]]] = {}
    for key, by_n in groups.items():
        out[key] = {}
        for n, rs in sorted(by_n.items()):
            fields = {k for r in rs for k, v in r.items() if isinstance(v, (int, float))}
            med = {
                f: statistics.median(r[f] for r in rs if isinstance(r.get(f), (int, float)))
                for f in fields
                if not isinstance(rs[0].get(f), bool)
            }
            med["reps"] = len(rs)
            out[key][n] = med
    return out


def fit_exponent(points: dict[int, float]) -> float | None:
    """k of the least-squares fit log t = k log N + c; None with fewer than 2 sizes."""
    pts = [(math.log(n), math.log(t)) for n, t in sorted(points.items()) if n > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def last_segment_exponent(points: dict[int, float]) -> float | None:
    """k between the two largest sizes: how the time grows where it matters."""
    ns = sorted(n for n, t in points.items() if t > 0)
    if len(ns) < 2:
        return None
    a, b = ns[-2], ns[-1]
    return math.log(points[b] / points[a]) / math.log(b / a)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def rows(med: dict[Key, dict[int, dict[str, float]]]) -> list[dict[str, Any]]:
    """One row per (series, N) with the derived numbers."""
    out = []
    for key in sorted(med, key=lambda k: (k[2], k[0] != "pydistem", k[0], k[1])):
        tool, runtime, shaped = key
        for n, m in med[key].items():
            mininet = med.get(("mininet", "host", shaped), {}).get(n, {}).get("up_s")
            floor = med.get(("floor", "netns", shaped), {}).get(n, {}).get("up_s")
            row: dict[str, Any] = {
                "series": series_name(key),
                "tool": tool,
                "runtime": runtime,
                "shaped": shaped,
                "n": n,
                "reps": int(m["reps"]),
                "up_s": m.get("up_s"),
                "ms_per_vnode": 1000 * m["up_s"] / n if m.get("up_s") else None,
                "teardown_s": m.get("teardown_s"),
                "vs_mininet": ratio(m.get("up_s"), mininet) if tool != "mininet" else None,
                "vs_floor": ratio(m.get("up_s"), floor) if tool != "floor" else None,
                "rss_kb_per_vnode": None,
                "state_kb_per_vnode": None,
                "load": m.get("load_before"),
            }
            if m.get("rss_peak_kib") and m.get("rss_base_kib") is not None:
                row["rss_kb_per_vnode"] = (m["rss_peak_kib"] - m["rss_base_kib"]) * 1.024 / n
            if m.get("state_bytes"):
                row["state_kb_per_vnode"] = m["state_bytes"] / 1000 / n
            out.append(row)
    return out


def exponents(med: dict[Key, dict[int, dict[str, float]]]) -> dict[str, dict[str, float | None]]:
    out = {}
    for key, by_n in med.items():
        pts = {n: m["up_s"] for n, m in by_n.items() if m.get("up_s")}
        out[series_name(key)] = {"k": fit_exponent(pts), "k_last": last_segment_exponent(pts)}
    return out


def markdown(table: list[dict[str, Any]], ks: dict[str, dict[str, float | None]]) -> str:
    head = (
        "| series | N | reps | up (s) | ms/vnode | teardown (s) | ÷ Mininet | ÷ floor "
        "| RSS KB/vnode | state KB/vnode | load |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['series']} | {r['n']} | {r['reps']} | {_fmt(r['up_s'])} | "
        f"{_fmt(r['ms_per_vnode'], 1)} | {_fmt(r['teardown_s'])} | {_fmt(r['vs_mininet'])} | "
        f"{_fmt(r['vs_floor'])} | {_fmt(r['rss_kb_per_vnode'], 1)} | "
        f"{_fmt(r['state_kb_per_vnode'], 1)} | {_fmt(r['load'], 1)} |"
        for r in table
    ]
    fit = ["", "| series | k (fit over all N) | k (two largest N) |", "|---|---:|---:|"]
    fit += [f"| {name} | {_fmt(k['k'])} | {_fmt(k['k_last'])} |" for name, k in sorted(ks.items())]
    return head + "\n".join(lines) + "\n" + "\n".join(fit) + "\n"


def _median_of(rs: list[dict[str, Any]], f: str) -> float | None:
    values = [r[f] for r in rs if isinstance(r.get(f), (int, float))]
    return statistics.median(values) if values else None


def _per_agent_kb(r: dict[str, Any]) -> float | None:
    """The median agent's RSS growth per vnode it hosts (KB)."""
    peaks, bases = r.get("agent_rss_peak_kib") or [], r.get("agent_rss_base_kib") or []
    grown = [(p - b) * 1.024 / r["per_host"] for p, b in zip(peaks, bases, strict=False)]
    return statistics.median(grown) if grown else None


def multihost_rows(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per host count of multihost.py's runs (medians over the reps)."""
    by_hosts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["tool"] != MULTIHOST or r.get("error") or r.get("probe", {}).get("missing"):
            continue
        r = dict(r)
        r["probe_s"] = r.get("probe", {}).get("seconds")
        r["coord_kb"] = (r["coordinator_rss_peak_kib"] - r["coordinator_rss_base_kib"]) * (
            1.024 / r["n"]
        )
        r["agent_kb"] = _per_agent_kb(r)
        r["agent_peak_mb"] = max(r.get("agent_rss_peak_kib") or [0]) / 1024
        r["state_kb"] = r["state_bytes"] / 1000 / r["n"] if r.get("state_bytes") else None
        by_hosts[int(r["hosts"])].append(r)
    out = []
    one = None
    for hosts, rs in sorted(by_hosts.items()):
        up = _median_of(rs, "up_s")
        n = int(rs[0]["n"])
        if hosts == 1:
            one = up
        out.append(
            {
                "hosts": hosts,
                "n": n,
                "per_host": int(rs[0]["per_host"]),
                "reps": len(rs),
                "up_s": up,
                "ms_per_vnode": 1000 * up / n if up else None,
                "deploy_call_s": _median_of(rs, "deploy_call_s"),
                "probe_s": _median_of(rs, "probe_s"),
                "teardown_s": _median_of(rs, "teardown_s"),
                "vs_one_host": ratio(up, one),
                "coordinator_kb_per_vnode": _median_of(rs, "coord_kb"),
                "agent_kb_per_vnode": _median_of(rs, "agent_kb"),
                "agent_peak_mb": _median_of(rs, "agent_peak_mb"),
                "state_kb_per_vnode": _median_of(rs, "state_kb"),
                "load": _median_of(rs, "load_before"),
            }
        )
    return out


def multihost_markdown(table: list[dict[str, Any]]) -> str:
    if not table:
        return ""
    head = (
        "| hosts | vnodes | reps | up (s) | ms/vnode | deploy call (s) | probe (s) "
        "| teardown (s) | up ÷ 1 host | coordinator RSS KB/vnode | agent RSS KB/vnode "
        "| agent peak RSS (MB) | state KB/vnode | load |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['hosts']} | {r['hosts']} x {r['per_host']} | {r['reps']} | {_fmt(r['up_s'])} | "
        f"{_fmt(r['ms_per_vnode'], 1)} | {_fmt(r['deploy_call_s'])} | {_fmt(r['probe_s'])} | "
        f"{_fmt(r['teardown_s'])} | {_fmt(r['vs_one_host'])} | "
        f"{_fmt(r['coordinator_kb_per_vnode'], 1)} | {_fmt(r['agent_kb_per_vnode'], 1)} | "
        f"{_fmt(r['agent_peak_mb'], 1)} | {_fmt(r['state_kb_per_vnode'], 1)} | "
        f"{_fmt(r['load'], 1)} |"
        for r in table
    ]
    pts = {r["n"]: r["up_s"] for r in table if r["up_s"]}
    k = (
        f"\nk (up time vs total vnodes, fit over {len(pts)} host counts) = "
        f"{_fmt(fit_exponent(pts))}; between the two largest: "
        f"{_fmt(last_segment_exponent(pts))}\n"
    )
    return head + "\n".join(lines) + "\n" + k


def plot_multihost(table: list[dict[str, Any]], out_dir: Path) -> Path | None:
    """Up time, deploy call and teardown vs the number of hosts."""
    if not table:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    hosts = [r["hosts"] for r in table]
    for field, label in (
        ("up_s", "until every vnode answers"),
        ("deploy_call_s", "deploy call"),
        ("teardown_s", "teardown"),
    ):
        ax.plot(hosts, [r[field] for r in table], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(hosts, [str(h) for h in hosts])
    ax.set_xlabel(f"hosts ({table[0]['per_host']} netns vnodes each, one VXLAN vnetwork)")
    ax.set_ylabel("seconds")
    ax.set_title("pydistem across test hosts (one 2-core machine)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "multihost_vs_hosts.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot(med: dict[Key, dict[int, dict[str, float]]], out_dir: Path) -> list[Path]:
    """time vs N (log-log) per tool, without and with the bandwidth limit; teardown too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for field, label, fname in (
        ("up_s", "time until every vnode answers (s)", "up_time_vs_n.png"),
        ("teardown_s", "teardown time (s)", "teardown_vs_n.png"),
    ):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
        for ax, shaped in zip(axes, (False, True), strict=True):
            for key in sorted(med):
                if key[2] != shaped:
                    continue
                pts = sorted((n, m[field]) for n, m in med[key].items() if m.get(field))
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", label=series_name(key))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("vnodes (N)")
            ax.set_title("100 Mbit/s limit on every viface" if shaped else "no link limit")
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        axes[0].set_ylabel(label)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
