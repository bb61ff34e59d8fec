#!/usr/bin/env bash
# The kernel tests on a lab machine, from a self-hosted runner that reaches
# it: OUROBOROS_LAB_MACHINE names its machine file (see README.md, "Lab
# machines over PXE"). The runner must be able to write the file's TFTP root
# and run its power commands.
source "$(dirname "$0")/common.sh"
machine="${OUROBOROS_LAB_MACHINE:?set OUROBOROS_LAB_MACHINE to the lab machine file}"
mkdir -p build/reports
exec "$REPO/ci/test.sh" --machine "$machine" --kernel-only --junit build/reports/lab-junit.xml
