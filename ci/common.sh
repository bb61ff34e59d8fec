# Shared by the ci/ scripts (sourced, not run).
# shellcheck shell=bash
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# Deno, from the npm package `deno`, exactly as README.md's commands run it. The
# pinned version is written in ci/deno-version only (tests/deno_version_test.ts
# checks README.md and .ci/run against it).
DENO_VERSION="$(<"$REPO/ci/deno-version")"

# Where apt keeps downloaded packages, so the workflow can cache them.
APT_ARCHIVES="${APT_ARCHIVES:-$HOME/.cache/apt-archives}"

# Deno as README.md runs it.
deno_() {
  npx -y "deno@${DENO_VERSION}" "$@"
}

# Run a command as root: directly when root (CI containers, this workplace), else with sudo -n.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}
