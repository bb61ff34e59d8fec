#!/usr/bin/env bash
# Install the Debian packages of package groups (default, boot-paths), as
# listed by tools/host/toolcheck.ts, keeping the downloaded .deb files in
# $APT_ARCHIVES for the workflow's cache. The test command would install
# missing ones itself; doing it first keeps that time out of the test run.
#   usage: ci/install-packages.sh GROUP...
source "$(dirname "$0")/common.sh"
[ "$#" -gt 0 ] || set -- default
read -r -a packages <<<"$(deno_ run -A tools/host/toolcheck.ts packages "$@")"
echo "install-packages ($*): ${packages[*]}"
mkdir -p "$APT_ARCHIVES/partial"
apt_() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dir::Cache::Archives="$APT_ARCHIVES" "$@"
}
apt_ update
apt_ install -y --no-install-recommends "${packages[@]}"
# The cache action runs as the runner's user: let it read (and later prune) the archives.
as_root chown -R "$(id -u):$(id -g)" "$APT_ARCHIVES"
