"""The lxc runtime against the real kernel: containers start in a netns we made,
run commands, stop, freeze, and leave nothing behind — also after a crash."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pydistem.agent.journal import Journal
from pydistem.errors import Conflict, KernelError, ValidationError
from pydistem.images import build_busybox
from pydistem.model.specs import VNode
from pydistem.plugins.runtimes.base import VNodeContext
from pydistem.plugins.runtimes.lxc import INIT_PATH, LxcRuntime, lxc_cgroups

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.lxc,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs the lxc tools"),
]


def _name() -> str:
    return "pdt" + secrets.token_hex(4)  # 11 characters: fits IFNAMSIZ too


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "file://" + str(build_busybox(tmp_path_factory.mktemp("img") / "busybox.tar.gz"))


@pytest.fixture
def netns() -> Iterator[Callable[[], str]]:
    """Make network namespaces (one per vnode, as the agent does); all deleted after."""
    made: list[str] = []

    def make() -> str:
        name = _name()
        made.append(name)
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return f"/run/netns/{name}"

    try:
        yield make
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A state dir whose journal is replayed through the cleaners at teardown."""
    try:
        yield tmp_path
    finally:
        journal = Journal(tmp_path / "journal")
        cleaners = LxcRuntime(tmp_path, journal).cleaners()
        for entry in reversed(journal.live()):
            cleaners[entry.kind](entry)
            journal.remove(entry.kind, entry.id)
        journal.close()


def _ctx(journal: Journal, state: Path, netns: str, image: str, shared: bool) -> VNodeContext:
    """A vnode context; the container is named after ``netns`` (its basename)."""
    name = _name()
    vnode = VNode(
        name=name,
        image=image,
        shared=shared,
        ssh_key={"public": "ssh-ed25519 AAAAC3Nza test@pdt", "private": "-----PRIVATE-----"},
    )
    hosts = f"127.0.0.1 localhost\n10.0.0.1 {name}\n"
    return VNodeContext(vnode, netns, state / "vnodes" / name, hosts, journal)


def _monitor_pids(name: str) -> list[int]:
    """Host processes that belong to container ``name`` (its monitor or payload)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/cgroup").read_text()
            except OSError:
                continue
            if f"/lxc.payload.{name}\n" in text or f"/lxc.monitor.{name}\n" in text:
                pids.append(int(entry))
    return pids


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    return [line for line in Path("/proc/mounts").read_text().splitlines() if prefix in line]


def _assert_gone(rt: LxcRuntime, ctx: VNodeContext, state: Path) -> None:
    name = Path(ctx.netns_path).name  # the container name
    assert not rt.is_running(ctx)
    assert _monitor_pids(name) == []
    assert lxc_cgroups(name) == []
    assert not (state / "lxc" / name).exists()
    assert not (ctx.workdir / "overlay").exists()
    assert not (ctx.workdir / "rootfs").exists()
    assert _mounts_under(state) == []


def test_lifecycle_shared_and_copied(state: Path, netns: Callable[[], str], image: str) -> None:
    journal = Journal(state / "journal")
    rt = LxcRuntime(state, journal)
    rt.check_host()
    ctxs = [_ctx(journal, state, netns(), image, shared) for shared in (True, True, False)]
    for ctx in ctxs:
        rt.validate(ctx.vnode)

    with ThreadPoolExecutor(len(ctxs)) as pool:  # parallel starts extract the image once
        list(pool.map(rt.start, ctxs))
    assert len(list((state / "images").iterdir())) == 1
    for ctx in ctxs:
        assert rt.is_running(ctx)
        rt.start(ctx)  # idempotent

        res = rt.execute(ctx, ["hostname"])
        assert (res.stdout, res.stderr, res.exit_code) == (ctx.vnode.name + "\n", "", 0)
        assert rt.execute(ctx, ["cat", "/etc/hosts"]).stdout == ctx.etc_hosts
        res = rt.execute(ctx, ["sh", "-c", "echo oops >&2; exit 7"])
        assert (res.stdout, res.stderr, res.exit_code) == ("", "oops\n", 7)
        assert rt.execute(ctx, ["cat"], stdin=b"in\n").stdout == "in\n"
        keys = rt.execute(ctx, ["ls", "-ln", "/root/.ssh"]).stdout
        assert "authorized_keys" in keys and "id_rsa" in keys
        perms = rt.execute(ctx, ["stat", "-c", "%a", "/root/.ssh", "/root/.ssh/id_rsa"]).stdout
        assert perms.split() == ["700", "600"]
        assert rt.wait_sshd(ctx) is False  # busybox: no sshd, and it says so
        with pytest.raises(KernelError) as err:
            rt.execute(ctx, ["sleep", "30"], timeout=0.3)
        assert err.value.errno is not None
        assert "sleep 30" not in rt.execute(ctx, ["ps"]).stdout  # the timed-out command died

    a, b, c = ctxs
    # the init is the image's (written once into the shared lower folder), /run a tmpfs:
    # a shared vnode's own layer holds only the files that differ per vnode
    for ctx in ctxs:
        assert rt.execute(ctx, ["test", "-x", INIT_PATH]).exit_code == 0
        mounts = rt.execute(ctx, ["cat", "/proc/mounts"]).stdout.splitlines()
        assert any(m.split()[1:3] == ["/run", "tmpfs"] for m in mounts), mounts
        assert rt.execute(ctx, ["test", "-s", "/run/pydistem-init.log"]).exit_code == 0
    (lower,) = (state / "images").glob("*/rootfs")
    assert (lower / INIT_PATH.lstrip("/")).is_file()
    upper = a.workdir / "overlay" / "upper"
    assert sorted(str(p.relative_to(upper)) for p in upper.rglob("*")) == [
        "etc",
        "etc/hostname",
        "etc/hosts",
        "root",
        "root/.ssh",
        "root/.ssh/authorized_keys",
        "root/.ssh/id_rsa",
        "root/.ssh/id_rsa.pub",
    ]
    # the copy is private, the overlays do not leak into each other or the image
    rt.execute(a, ["sh", "-c", "echo a > /tmp/mark"])
    assert rt.execute(b, ["cat", "/tmp/mark"]).exit_code != 0
    assert rt.execute(c, ["cat", "/tmp/mark"]).exit_code != 0

    rt.stop(a)
    rt.stop(a)  # idempotent
    assert not rt.is_running(a)
    assert lxc_cgroups(Path(a.netns_path).name) == []
    with pytest.raises(Conflict):
        rt.execute(a, ["true"])
    rt.start(a)
    assert rt.execute(a, ["cat", "/tmp/mark"]).stdout == "a\n"  # files kept across stop

    rt.freeze(b)
    assert rt.is_frozen(b) and rt.is_running(b)
    with pytest.raises(Conflict):
        rt.execute(b, ["true"])
    rt.unfreeze(b)
    assert rt.execute(b, ["true"]).exit_code == 0
    rt.freeze(b)  # a frozen vnode still stops and is removed

    for ctx in ctxs:
        rt.remove(ctx)
        rt.remove(ctx)  # idempotent
        _assert_gone(rt, ctx, state)
    assert [e.kind for e in journal.live()] == ["dir"]  # only the shared image cache
    rt.images.remove_all(journal)
    assert journal.live() == []
    assert not list((state / "images").iterdir())


def test_crash_cleanup_from_journal(state: Path, netns: Callable[[], str], image: str) -> None:
    journal = Journal(state / "journal")
    rt = LxcRuntime(state, journal)
    ctxs = [_ctx(journal, state, netns(), image, shared) for shared in (True, False)]
    for ctx in ctxs:
        rt.start(ctx)
    rt.freeze(ctxs[0])
    journal.close()
    del rt, journal  # the agent "crashes": only the journal file remains

    journal = Journal(state / "journal")
    live = journal.live()
    assert {e.kind for e in live} == {"lxc", "dir"}
    cleaners = LxcRuntime(state, journal).cleaners()
    for entry in reversed(live):
        cleaners[entry.kind](entry)
        cleaners[entry.kind](entry)  # tolerate an object already gone
        journal.remove(entry.kind, entry.id)
    assert journal.live() == []
    rt = LxcRuntime(state, journal)
    for ctx in ctxs:
        _assert_gone(rt, ctx, state)
    assert not list((state / "images").iterdir())


def test_two_agents_same_vnode_name(tmp_path: Path, netns: Callable[[], str], image: str) -> None:
    """Two agents on one host (two state dirs) may both run a vnode called node-1."""
    runtimes, ctxs = [], []
    try:
        for i in range(2):
            state = tmp_path / f"agent{i}"
            journal = Journal(state / "journal")
            rt = LxcRuntime(state, journal)
            vnode = VNode(name="node-1", image=image)
            ctx = VNodeContext(vnode, netns(), state / "vnodes" / "node-1", "", journal)
            rt.start(ctx)
            runtimes.append(rt)
            ctxs.append(ctx)
        for rt, ctx in zip(runtimes, ctxs, strict=True):
            assert rt.execute(ctx, ["hostname"]).stdout == "node-1\n"
        runtimes[0].remove(ctxs[0])
        _assert_gone(runtimes[0], ctxs[0], tmp_path / "agent0")
        assert runtimes[1].is_running(ctxs[1])
        assert runtimes[1].execute(ctxs[1], ["true"]).exit_code == 0
    finally:
        for rt, ctx in zip(runtimes, ctxs, strict=True):
            rt.remove(ctx)
            rt.images.remove_all(rt.journal)


def test_validate_and_missing_netns(state: Path, image: str) -> None:
    journal = Journal(state / "journal")
    rt = LxcRuntime(state, journal)
    rt.validate(VNode(name="pdtnoimg"))  # the image may come later: the agent's
    assert rt.needs_image  # check_vnodes(starting=True) refuses to start it without one
    missing = state / "nope.tar.gz"
    with pytest.raises(ValidationError) as err:
        rt.validate(VNode(name="pdtmiss", image=str(missing)))
    assert str(missing) in err.value.reason
    ctx = _ctx(journal, state, "/run/netns/pdt-absent", image, True)
    with pytest.raises(KernelError):
        rt.start(ctx)
    assert not rt.is_running(ctx)
    with pytest.raises(Conflict):
        rt.execute(ctx, ["true"])


@pytest.mark.slow
def test_debian_image_sshd_accepts_the_vnode_key(
    state: Path, netns: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """debootstrap a Debian image (or use $PYDISTEM_DEBIAN_IMAGE), then ssh into a vnode."""
    from pydistem.images import build_debian

    path = os.environ.get("PYDISTEM_DEBIAN_IMAGE")
    if not path:
        if shutil.which("debootstrap") is None:
            pytest.skip("needs debootstrap")
        path = str(build_debian(tmp_path_factory.mktemp("deb") / "debian.tar.gz"))
    keydir = tmp_path_factory.mktemp("key")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keydir / "k")], check=True
    )
    journal = Journal(state / "journal")
    rt = LxcRuntime(state, journal)
    name = _name()
    vnode = VNode(
        name=name,
        image=path,
        ssh_key={"public": (keydir / "k.pub").read_text(), "private": (keydir / "k").read_text()},
    )
    ns = netns()
    ctx = VNodeContext(vnode, ns, state / "vnodes" / name, "127.0.0.1 localhost\n", journal)
    rt.start(ctx)
    assert rt.wait_sshd(ctx) is True
    assert rt.sshd_status(ctx) == "running"
    res = subprocess.run(
        ["ip", "netns", "exec", Path(ns).name, "ssh", "-i", str(keydir / "k"),
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "root@127.0.0.1", "hostname"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.stdout.strip() == name, res.stderr
    rt.remove(ctx)
    _assert_gone(rt, ctx, state)
