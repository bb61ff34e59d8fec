#!/usr/bin/env bash
# The pipeline of `deno task bench --vs-linux` on the smallest region: Debian's
# kernel (apt-get download of what linux-image-amd64 depends on), the
# benchmark program built static with gcc as /init, the boot in QEMU under
# -icount shift=0, the parse (tests/bench_linux_test.ts, opt-in by
# OUROBOROS_VS_LINUX=1). Runs in a Debian container: the kernel package is
# Debian's. Its serial log is build/logs/bench-linux.log.
#   usage: ci/vs-linux.sh
source "$(dirname "$0")/common.sh"
OUROBOROS_VS_LINUX=1 deno_ test -A tests/bench_linux_test.ts
