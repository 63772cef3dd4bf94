#!/bin/sh
# Quick start: install what is needed, build the busybox image, deploy
# examples/quickstart.yaml (3 LXC vnodes + 1 netns probe on one vnetwork), show the
# vnodes and a ping matrix, and leave the platform running.
#   ./scripts/quickstart-demo.sh                 # leave it running (distem destroy removes it)
#   ./scripts/quickstart-demo.sh --run hostname  # run a command in every vnode, then destroy
#   ./scripts/quickstart-demo.sh --destroy-after # show it, then destroy
# Extra arguments go to `distem deploy`. Safe to run again: an already deployed
# quickstart platform is shown, not rebuilt.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/install.sh"
cd "$ROOT"
DISTEM="$ROOT/.venv/bin/distem"
"$DISTEM" image build --kind busybox --if-missing
"$DISTEM" deploy examples/quickstart.yaml "$@"
