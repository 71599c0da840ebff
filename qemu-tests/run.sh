#!/usr/bin/env bash
# The newcomer's entry point (as root on Debian 12):
#   qemu-tests/run.sh demo   set up the host, build the appliance, back up a demo VM,
#                            restore it and print the report
#   qemu-tests/run.sh test   set up the host and run every test, the QEMU ones included
#   qemu-tests/run.sh bench  set up the host and print the benchmark figures
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-test}
case "$target" in
  demo|test|bench) ;;
  *) echo "usage: $0 demo|test|bench" >&2; exit 2 ;;
esac
bash qemu-tests/setup-host.sh
export PATH=$PATH:/usr/local/go/bin
SHELL=/bin/bash exec make "$target"
