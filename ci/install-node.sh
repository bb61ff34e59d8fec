#!/usr/bin/env bash
# Node and npm from Debian, for a job in a plain Debian container (the
# linux-kunit job: Debian's linux-source-6.1 is not in Ubuntu): the pinned
# Deno comes from npm (ci/common.sh). Nothing to do where npx exists.
set -euo pipefail
command -v npx >/dev/null && exit 0
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}
as_root env DEBIAN_FRONTEND=noninteractive apt-get -q update
as_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
  nodejs npm ca-certificates
