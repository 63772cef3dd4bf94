#!/bin/sh
# Install what pydistem needs on Debian 12, as root. Idempotent: a second run only checks.
#   - Debian packages: LXC, static busybox (images), debootstrap, iproute2, ping, iperf3,
#     OpenSSH, nftables, python3-venv, sudo (the bootstrap tests gain root through it)
#   - a virtualenv .venv in this checkout with `pip install -e '.[test]'`
#   - /usr/local/bin/distem and /usr/local/bin/distemd pointing into .venv
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${PYDISTEM_VENV:-$ROOT/.venv}
PACKAGES="lxc busybox-static debootstrap iproute2 iputils-ping iperf3 openssh-server
openssh-client nftables python3 python3-venv ca-certificates procps sudo"

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run me as root (pydistem drives netlink, LXC and cgroups)" >&2
    exit 1
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: this script is for Debian 12 (apt-get, dpkg-query not found)" >&2
    exit 1
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    echo "==> apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
else
    echo "==> Debian packages: all present"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> python3 -m venv $VENV"
    python3 -m venv "$VENV"
fi
# reinstall only when the packaging metadata changed since the last install
stamp="$VENV/.pydistem-install"
want=$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" -c "import pydistem" 2>/dev/null; then
    echo "==> pip install -e '.[test]' into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
    echo "$want" >"$stamp"
else
    echo "==> $VENV: pydistem installed"
fi

for tool in distem distemd; do
    if [ "$(readlink /usr/local/bin/$tool 2>/dev/null)" != "$VENV/bin/$tool" ]; then
        ln -sf "$VENV/bin/$tool" "/usr/local/bin/$tool"
        echo "==> /usr/local/bin/$tool -> $VENV/bin/$tool"
    fi
done
