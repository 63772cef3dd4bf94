#!/bin/sh
# Install what the tests need (as scripts/install.sh, plus the VM and bench tools), then run
# pytest over tests/ (unit, kernel, vm, testbeds). Exit status = pytest's; pytest's
# 5 ("no tests collected") is reported as an error too. Extra arguments go to pytest.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/install.sh" || exit $?
if [ -x "$ROOT/tests/vm/setup_vm_tools.sh" ]; then
    "$ROOT/tests/vm/setup_vm_tools.sh" ||
        echo "run-tests.sh: warning: tests/vm/setup_vm_tools.sh failed; VM tests will say why" >&2
fi
if [ -x "$ROOT/bench/install.sh" ]; then
    "$ROOT/bench/install.sh" ||
        echo "run-tests.sh: warning: bench/install.sh failed; the bench test will say why" >&2
fi
cd "$ROOT"
"$ROOT/.venv/bin/python" -m pytest tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "run-tests.sh: error: pytest collected no tests" >&2
fi
exit "$rc"
