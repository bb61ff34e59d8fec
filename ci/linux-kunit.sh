#!/usr/bin/env bash
# The opt-in Linux KUnit configuration: builds Linux from Debian's
# linux-source-6.1 with kunit.py (cached in ~/.cache/ouroboros), runs it with
# deno task test --image, passing and failing, and checks the verdicts and
# counts against kunit.py parse on the same serial logs
# (tests/linux_kunit_test.ts). Logs and reports under build/.
source "$(dirname "$0")/common.sh"
export OUROBOROS_LINUX_KUNIT=1
exec "$REPO/ci/test.sh" tests/linux_kunit_test.ts "$@"
