#!/bin/sh
# Install what bench/run.py needs beyond pydistem's own install (scripts/install.sh),
# as root on Debian 12. Idempotent: a second run only checks.
#   - Debian packages: mininet (2.3; without its recommended Open vSwitch: the bench
#     uses Mininet's LinuxBridge switch) and bridge-utils (brctl, which LinuxBridge runs)
#   - into the checkout's .venv: matplotlib (plots) and py-spy (profiling)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${PYDISTEM_VENV:-$ROOT/.venv}
PACKAGES="mininet bridge-utils"

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/install.sh: run me as root" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$ROOT/scripts/install.sh"
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
fi
if ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null || [ ! -x "$VENV/bin/py-spy" ]; then
    echo "==> pip install matplotlib py-spy into $VENV"
    "$VENV/bin/python" -m pip install -q matplotlib py-spy
fi
echo "==> bench: ready (python bench/run.py --quick)"
