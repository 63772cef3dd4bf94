"""What a machine must offer, as data: kernel features and the iproute2 version.

Pure functions over what the machine printed (``ip -V``, the feature probe), so that
every old and new output format is unit-tested without an old machine. The probe itself
is a POSIX shell script that really creates each object, in a throwaway network
namespace (``unshare -n``) that disappears with the script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

#: VXLAN's ``dstport`` (the UDP port, needed to interoperate: the kernel's default 8472
#: is not IANA's 4789) appeared in iproute2 3.16, snapshot ss140804.
IPROUTE2_MIN = (3, 16)
IPROUTE2_MIN_SNAPSHOT = date(2014, 8, 4)


@dataclass(frozen=True)
class IpVersion:
    """What ``ip -V`` said: a release (``6.1.0``) or an old snapshot date (``ss140804``)."""

    text: str
    release: tuple[int, ...] | None = None
    snapshot: date | None = None

    @property
    def known(self) -> bool:
        return self.release is not None or self.snapshot is not None

    @property
    def has_vxlan_dstport(self) -> bool:
        if self.release is not None:
            return self.release[:2] >= IPROUTE2_MIN
        if self.snapshot is not None:
            return self.snapshot >= IPROUTE2_MIN_SNAPSHOT
        return False

    def __str__(self) -> str:
        if self.release is not None:
            return ".".join(map(str, self.release))
        if self.snapshot is not None:
            return f"ss{self.snapshot:%y%m%d}"
        return "unknown"


_RELEASE = re.compile(r"iproute2-v?(\d+)\.(\d+)(?:\.(\d+))?")
_SNAPSHOT = re.compile(r"iproute2-ss(\d{2})(\d{2})(\d{2})")


def parse_ip_version(text: str) -> IpVersion:
    """``ip utility, iproute2-6.1.0, libbpf 1.1.2`` -> release (6, 1, 0);
    ``ip utility, iproute2-ss131122`` -> snapshot 2013-11-22; anything else (BusyBox's
    ``ip``, no ``ip`` at all) -> unknown, which counts as too old."""
    text = text.strip()
    m = _SNAPSHOT.search(text)
    if m:
        try:
            return IpVersion(text, snapshot=date(2000 + int(m[1]), int(m[2]), int(m[3])))
        except ValueError:
            return IpVersion(text)
    m = _RELEASE.search(text)
    if m:
        return IpVersion(text, release=tuple(int(g) for g in m.groups() if g is not None))
    return IpVersion(text)


@dataclass(frozen=True)
class Iproute2Plan:
    """What to do about iproute2: nothing, upgrade through apt, or give up (``reason``)."""

    action: str  # "ok" | "upgrade" | "fail"
    reason: str = ""
    command: str = ""


APT_UPGRADE_IPROUTE2 = (
    "export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && "
    "apt-get install -y -q --only-upgrade iproute2 >/dev/null"
)
APT_INSTALL_IPROUTE2 = (
    "export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && "
    "apt-get install -y -q iproute2 >/dev/null"
)


_POLICY_SUITE = re.compile(r"^\s+-?\d+\s+\S+\s+(\S+?)/\S+\s+\S+\s+Packages\s*$")


def backports_suites(policy: str) -> list[str]:
    """The backports suites ``apt-cache policy iproute2`` lists (``bookworm-backports``),
    in order: where a newer iproute2 may be, though apt never picks it by default."""
    found: list[str] = []
    for line in policy.splitlines():
        m = _POLICY_SUITE.match(line)
        if m and "backports" in m[1] and m[1] not in found:
            found.append(m[1])
    return found


def plan_iproute2(version: IpVersion, has_apt: bool) -> Iproute2Plan:
    """Decide from the parsed ``ip -V`` and whether the machine has apt-get."""
    if version.has_vxlan_dstport:
        return Iproute2Plan("ok")
    want = ".".join(map(str, IPROUTE2_MIN))
    what = (
        f"iproute2 {version} is older than {want} (VXLAN dstport)"
        if version.known
        else f"no iproute2 `ip` found ({version.text or 'no output'!r})"
    )
    if not has_apt:
        return Iproute2Plan("fail", f"{what} and there is no apt-get: upgrade it by hand")
    command = APT_UPGRADE_IPROUTE2 if version.known else APT_INSTALL_IPROUTE2
    return Iproute2Plan("upgrade", what, command)


# --------------------------------------------------------------------------- kernel features

#: feature -> (required, what breaks without it)
FEATURES: dict[str, tuple[bool, str]] = {
    "netns": (True, "no vnode can be built (each vnode is a network namespace)"),
    "veth": (True, "no viface can be built (each viface is a veth pair)"),
    "bridge": (True, "no vnetwork can be built on this pnode (each is a bridge)"),
    "cgroups": (True, "vnodes cannot be confined nor listed (cgroups cpu, memory)"),
    "vxlan": (False, "VXLAN vnetworks cannot reach this pnode; use classic vnetworks"),
    "sch_htb": (False, "bandwidth limits (input/output) fail on this pnode"),
    "sch_netem": (
        False,
        "latency, jitter, loss, duplication, corruption and reordering limits fail on this "
        "pnode (bandwidth limits through htb still work)",
    ),
}

#: Runs as root. Every check creates the real object inside ONE throwaway network
#: namespace (``unshare -n``; one namespace, not one per check: creating namespaces is
#: slow on a busy kernel), so nothing outlives the script. One line per feature:
#: ``<feature> ok`` or ``<feature> missing <why>``.
FEATURE_PROBE = r"""
inner='probe() { name=$1; shift
  if err=$("$@" 2>&1); then echo "$name ok"
  else echo "$name missing $(echo "$err" | tail -n 1)"; fi
}
echo "netns ok"
ip link set lo up
probe veth ip link add pdp0 type veth peer name pdp1
probe bridge ip link add pdp2 type bridge
probe vxlan ip link add pdp3 type vxlan id 42
probe sch_netem tc qdisc add dev lo root netem delay 1ms
probe sch_htb tc qdisc replace dev lo root handle 1: htb'
if ! command -v unshare >/dev/null 2>&1; then
  out="netns missing no unshare(1)"
elif ! out=$(unshare -n sh -c "$inner" 2>&1); then
  out="netns missing $(echo "$out" | tail -n 1)"
fi
printf '%s\n' "$out"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  c=$(cat /sys/fs/cgroup/cgroup.controllers)
else
  c=$(awk '!/^#/ && $4 == 1 {print $1}' /proc/cgroups 2>/dev/null | tr '\n' ' ')
fi
case " $c " in
  *" cpu "*" memory "*|*" memory "*" cpu "*) echo "cgroups ok";;
  *) echo "cgroups missing controllers cpu and memory not both enabled (have: $c)";;
esac
"""


@dataclass(frozen=True)
class FeatureReport:
    present: dict[str, bool]
    errors: list[str]  # required features missing: the machine cannot be a pnode
    warnings: list[str]  # optional features missing, each naming the consequence


def parse_features(output: str) -> FeatureReport:
    """The probe's lines -> which features are present, errors and warnings. A feature
    the probe did not report at all counts as missing."""
    seen: dict[str, tuple[bool, str]] = {}
    for line in output.splitlines():
        name, _, rest = line.strip().partition(" ")
        if name in FEATURES:
            status, _, why = rest.partition(" ")
            seen[name] = (status == "ok", why.strip())
    present, errors, warnings = {}, [], []
    for name, (required, consequence) in FEATURES.items():
        ok, why = seen.get(name, (False, "not reported by the probe"))
        present[name] = ok
        if not ok:
            text = f"{name} missing ({why or 'no reason given'}): {consequence}"
            (errors if required else warnings).append(text)
    return FeatureReport(present, errors, warnings)
