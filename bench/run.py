"""Benchmarks of pydistem against Mininet and the raw kernel floor, in one run.

Each measurement is one script run in a fresh process (deploy.py for pydistem,
mininet_net.py for Mininet, floor.py for the floor), interleaved so that the load of
this shared machine falls on every tool alike. The Markdown table goes to stdout and
to OUT/results.md, the raw runs to OUT/runs.json, plots to OUT/*.png.

    python bench/run.py            # N = 10, 100, 1000; netns and lxc; with and without limits;
                                   # and 1, 2, 4, 8 test hosts x 128 vnodes (multihost.py)
    python bench/run.py --quick    # N = 10, 100; netns; no limit; < 60 s
    python bench/run.py --sizes 10,100 --runtimes netns --tools pydistem,floor
    python bench/run.py --tools multihost --hosts 1,8

The last line is the headline: ``ratio_vs_mininet_netns_N100=<x>`` (pydistem's time
divided by Mininet's for 100 netns vnodes; 0.2 means 5x faster). Needs root, and
bench/install.sh for Mininet and matplotlib.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SYSTEM_PYTHON = "/usr/bin/python3"
#: the lock tests/conftest.py takes around every kernel test: held during the whole
#: run, so that no test of another checkout sees our objects or shares the CPU
KERNEL_LOCK = Path("/run/lock/pydistem-kernel-tests.lock")

sys.path.insert(0, str(HERE))
import report  # noqa: E402
from common import parse_result  # noqa: E402


def _reexec_in_venv() -> None:
    """``python bench/run.py`` with a python that lacks pydistem: use the checkout's venv."""
    try:
        import pydistem  # noqa: F401
    except ImportError:
        venv = ROOT / ".venv" / "bin" / "python"
        if venv.exists() and Path(sys.executable).resolve() != venv.resolve():
            os.execv(str(venv), [str(venv), *sys.argv])
        sys.exit("bench/run.py: pydistem is not importable; run scripts/install.sh first")


def have_mininet() -> bool:
    return (
        shutil.which("mnexec") is not None
        and shutil.which("brctl") is not None
        and subprocess.run(
            [SYSTEM_PYTHON, "-c", "import mininet.net"], capture_output=True, check=False
        ).returncode
        == 0
    )


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    osr = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        k, _, v = line.partition("=")
        osr[k] = v.strip('"')

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "absent"

    import pyroute2

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": osr.get("PRETTY_NAME", "?"),
        "python": platform.python_version(),
        "pyroute2": pyroute2.__version__,
        "lxc": version(["lxc-start", "--version"]),
        "mininet": version([SYSTEM_PYTHON, "-c", "import mininet.net as m; print(m.VERSION)"]),
    }


def plan(args: argparse.Namespace, mininet: bool) -> list[dict[str, Any]]:
    """Every measurement, in the order to run them: by N, then rep, tools interleaved."""
    todo = []
    for n in args.sizes:
        for rep in range(args.reps if n <= 100 else args.reps_large):
            for shaped in args.shaped:
                common = {"n": n, "shaped": shaped, "rep": rep}
                if "pydistem" in args.tools:
                    for runtime in args.runtimes:
                        todo.append({"tool": "pydistem", "runtime": runtime, **common})
                if "mininet" in args.tools and mininet:
                    todo.append({"tool": "mininet", "runtime": "host", **common})
                if "floor" in args.tools:
                    todo.append({"tool": "floor", "runtime": "netns", **common})
    if "multihost" in args.tools:
        for rep in range(args.reps_multihost):
            for hosts in args.hosts:
                todo.append(
                    {
                        "tool": "multihost",
                        "runtime": "netns-vxlan",
                        "n": hosts * args.per_host,
                        "hosts": hosts,
                        "per_host": args.per_host,
                        "shaped": False,
                        "rep": rep,
                    }
                )
    return todo


def command(m: dict[str, Any]) -> list[str]:
    shaped = ["--shaped"] if m["shaped"] else []
    if m["tool"] == "pydistem":
        return [
            sys.executable,
            str(HERE / "deploy.py"),
            str(m["n"]),
            "--runtime",
            m["runtime"],
            *shaped,
        ]
    if m["tool"] == "multihost":
        per_host = ["--per-host", str(m["per_host"])]
        return [sys.executable, str(HERE / "multihost.py"), str(m["hosts"]), *per_host]
    if m["tool"] == "mininet":
        return [SYSTEM_PYTHON, str(HERE / "mininet_net.py"), str(m["n"]), *shaped]
    return [sys.executable, str(HERE / "floor.py"), str(m["n"]), *shaped]


@contextlib.contextmanager
def kernel_lock(take: bool):  # type: ignore[no-untyped-def]
    if not take:
        yield
        return
    KERNEL_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with KERNEL_LOCK.open("a") as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def measure(m: dict[str, Any], logs: Path, timeout: float) -> dict[str, Any]:
    label = f"{m['tool']}-{m['runtime']}-{'shaped' if m['shaped'] else 'plain'}-{m['n']}"
    log = logs / f"{label}-{m.get('rep', 0)}.log"
    load = os.getloadavg()[0]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command(m), capture_output=True, text=True, timeout=timeout, check=False
        )
        log.write_text(proc.stdout + "\n--- stderr\n" + proc.stderr)
        result = parse_result(proc.stdout)
        if proc.returncode != 0 and not result.get("probe", {}).get("missing"):
            result["error"] = f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        result = {**m, "error": f"timed out after {timeout:.0f} s"}
    except ValueError:
        result = {**m, "error": f"no result (see {log})"}
    result.update(load_before=load, wall_s=time.monotonic() - started, rep=m.get("rep", 0))
    return result


def run_all(todo: list[dict[str, Any]], logs: Path, timeout: float) -> list[dict[str, Any]]:
    """Every measurement in order, with one progress line each on stderr."""
    runs = []
    for i, m in enumerate(todo, 1):
        r = measure(m, logs, timeout)
        runs.append(r)
        up, down = r.get("up_s", 0), r.get("teardown_s", 0)
        state = r.get("error") or f"{up:.2f} s up, {down:.2f} s down"
        print(
            f"[{i}/{len(todo)}] {m['tool']} {m['runtime']} N={m['n']}"
            f"{' shaped' if m['shaped'] else ''}: {state} (load {r['load_before']:.1f})",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(0.5)  # let the kernel finish freeing the namespaces of the last run
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="N = 10, 100; netns; no limit (< 60 s)")
    p.add_argument("--sizes", help="comma-separated N (default 10,100,1000)")
    p.add_argument("--runtimes", help="netns,lxc (default both)")
    p.add_argument(
        "--tools", help="pydistem,mininet,floor,multihost (default all; quick: not multihost)"
    )
    p.add_argument("--hosts", help="multihost: test-host counts (default 1,2,4,8)")
    p.add_argument("--per-host", type=int, default=128, help="multihost: vnodes per host (128)")
    p.add_argument("--reps-multihost", type=int, default=1, help="multihost repetitions (1)")
    p.add_argument("--shaped", choices=("no", "yes", "both"), help="bandwidth limits (both)")
    p.add_argument("--reps", type=int, help="repetitions for N <= 100 (default 3; quick 1)")
    p.add_argument("--reps-large", type=int, default=1, help="repetitions for N > 100 (1)")
    p.add_argument("--out", type=Path, help="results folder (bench/results, quick: .../quick)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    p.add_argument(
        "--previous",
        type=Path,
        help="runs.json of an earlier run to report together with this one (this run's"
        " measurements replace the earlier ones of the same tool, runtime, limit and N)",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--no-lock",
        action="store_true",
        help="do not take the host-wide kernel-test lock (the caller holds it: pytest)",
    )
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/run.py: run as root (it builds network namespaces)", file=sys.stderr)
        return 2
    _reexec_in_venv()
    quick = args.quick
    args.sizes = [int(x) for x in (args.sizes or ("10,100" if quick else "10,100,1000")).split(",")]
    args.runtimes = (args.runtimes or ("netns" if quick else "netns,lxc")).split(",")
    default_tools = "pydistem,mininet,floor" + ("" if quick else ",multihost")
    args.tools = (args.tools or default_tools).split(",")
    args.hosts = [int(x) for x in (args.hosts or "1,2,4,8").split(",")]
    shaped = args.shaped or ("no" if quick else "both")
    args.shaped = {"no": [False], "yes": [True], "both": [False, True]}[shaped]
    args.reps = args.reps or (1 if quick else 3)
    out: Path = args.out or (HERE / "results" / ("quick" if quick else ""))
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    mininet = "mininet" in args.tools and have_mininet()
    if "mininet" in args.tools and not mininet:
        print("bench: Mininet is not installed (bench/install.sh): skipped", file=sys.stderr)
    info = machine()
    todo = plan(args, mininet)
    with kernel_lock(not args.no_lock):
        runs = run_all(todo, logs, args.timeout)
    if args.previous:
        redone = {(r["tool"], r["runtime"], r["shaped"], r["n"]) for r in runs}
        earlier = json.loads(args.previous.read_text())["runs"]
        runs = [
            r for r in earlier if (r["tool"], r["runtime"], r["shaped"], r["n"]) not in redone
        ] + runs
    med = report.medians(runs)
    table = report.rows(med)
    ks = report.exponents(med)
    text = report.markdown(table, ks) if table else ""
    multihost = report.multihost_rows(runs)
    if multihost:
        text += (
            "\nAcross test hosts (multihost.py: one VXLAN vnetwork, netns vnodes; the"
            " coordinator on a host of its own):\n\n" + report.multihost_markdown(multihost)
        )
    loads = [r["load_before"] for r in runs]
    header = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {info['cpu']}, "
        f"{info['cores']} cores, {info['memory_gib']} GiB, {info['os']}, kernel "
        f"{info['kernel']}; Python {info['python']}, pyroute2 {info['pyroute2']}, "
        f"{info['lxc'] and 'LXC ' + info['lxc']}, Mininet {info['mininet']}. "
        f"Load average (1 min) before the runs: min {min(loads):.1f}, "
        f"median {sorted(loads)[len(loads) // 2]:.1f}, max {max(loads):.1f}.\n\n"
    )
    failed = [r for r in runs if r.get("error") or r.get("probe", {}).get("missing")]
    if failed:
        header += (
            f"{len(failed)} run(s) failed and are left out: "
            + "; ".join(
                f"{r['tool']} {r['runtime']} N={r['n']}: {r.get('error') or 'no answer'}"
                for r in failed
            )
            + "\n\n"
        )
    (out / "results.md").write_text(header + text)
    (out / "runs.json").write_text(json.dumps({"machine": info, "runs": runs}, indent=1))
    if not args.no_plots:
        try:
            if med:
                report.plot(med, out)
            report.plot_multihost(multihost, out)
        except ImportError:
            print("bench: matplotlib missing (bench/install.sh): no plots", file=sys.stderr)
    print(header + text)
    head = next(
        (
            r["vs_mininet"]
            for r in table
            if r["tool"] == "pydistem"
            and r["runtime"] == "netns"
            and not r["shaped"]
            and r["n"] == 100
            and r["vs_mininet"] is not None
        ),
        None,
    )
    biggest = max(multihost, key=lambda r: r["hosts"], default=None)
    if biggest is not None and biggest["up_s"]:
        print(f"multihost_{biggest['hosts']}x{biggest['per_host']}_up_s={biggest['up_s']:.2f}")
    if head is not None:
        print(f"ratio_vs_mininet_netns_N100={head:.3f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
