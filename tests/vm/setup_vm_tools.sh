#!/bin/sh
# Install what tests/vm needs: qemu, a full Debian kernel (with sch_netem as a module)
# and virtme-ng in the project venv. Idempotent: does nothing when all is present.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${PYDISTEM_VENV:-$ROOT/.venv}

need_apt=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_apt="$need_apt qemu-system-x86"
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || need_apt="$need_apt linux-image-amd64"
command -v iperf3 >/dev/null 2>&1 || need_apt="$need_apt iperf3"
command -v ping >/dev/null 2>&1 || need_apt="$need_apt iputils-ping"
command -v busybox >/dev/null 2>&1 || need_apt="$need_apt busybox"
if [ -n "$need_apt" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $need_apt
fi
if [ ! -x "$VENV/bin/vng" ]; then
    "$VENV/bin/python" -m pip install -q virtme-ng
fi
echo "vm tools ready: $(command -v qemu-system-x86_64) $(ls /boot/vmlinuz-*-amd64 | tail -n 1) $VENV/bin/vng"
