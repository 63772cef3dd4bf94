"""Shared test setup: pydistem's own fixtures and kernel-state snapshots."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pydistem.testing"]


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 MB busybox rootfs tarball (``distem image build``), built once per session."""
    from pydistem.images.build import build_busybox

    return build_busybox(tmp_path_factory.mktemp("img") / "busybox.tar.gz")


@pytest.fixture
def hostbed(tmp_path: Path):
    """Factory: ``hostbed(n, sshd=...)`` builds a HostBed (tests/hostbed.py) that is torn
    down after the test, whatever happens."""
    from pydistem.testing import unique_tag
    from tests.hostbed import HostBed

    beds: list[HostBed] = []

    def make(n: int, **kw: object) -> HostBed:
        bed = HostBed(n, unique_tag(), workdir=tmp_path / f"hostbed{len(beds)}", **kw)  # type: ignore[arg-type]
        beds.append(bed)
        return bed.__enter__()

    yield make
    for bed in reversed(beds):
        bed.close()


def kernel_snapshot() -> dict[str, set[str]]:
    """Names of netns, links, LXC-like processes, overlay mounts and pydistem cgroups."""

    def lines(cmd: list[str]) -> set[str]:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}

    mounts = {
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if "overlay" in line or "/run/netns/" in line
    }
    cgroups = set()
    for hierarchy in os.scandir("/sys/fs/cgroup"):
        if hierarchy.is_dir():
            cgroups.update(
                g.path
                for g in os.scandir(hierarchy.path)
                if g.is_dir() and g.name.startswith(("pd", "lxc.payload", "lxc.monitor"))
            )
    return {
        "netns": lines(["ip", "netns", "list"]),
        "links": lines(["ip", "-o", "-br", "link"]),
        "mounts": mounts,
        "cgroups": cgroups,
    }


@pytest.fixture
def kernel_unchanged():
    """Assert that the test leaves no kernel object behind."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    before = kernel_snapshot()
    yield before
    after = kernel_snapshot()
    for key in before:
        extra = after[key] - before[key]
        assert not extra, f"left behind ({key}): {sorted(extra)}"


KERNEL_MARKERS = {"kernel", "lxc", "vm", "testbeds"}
LOCK = Path("/run/lock/pydistem-kernel-tests.lock")


@pytest.fixture(autouse=True)
def one_kernel_test_at_a_time(request: pytest.FixtureRequest):
    """Tests that build kernel objects take a host-wide lock, so that two test runs on
    one machine (two checkouts, say) never see each other's objects in
    ``kernel_unchanged`` nor share the CPU in a timing measurement. Free when alone."""
    if os.geteuid() != 0 or not KERNEL_MARKERS & {m.name for m in request.node.iter_markers()}:
        yield
        return
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a") as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
