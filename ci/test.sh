#!/usr/bin/env bash
# README.md's test command, with the arguments given (--config, --shard,
# --machine, --junit...). Its JUnit report and serial logs are in
# build/reports/ and build/logs/ afterwards, whatever the outcome.
#   usage: ci/test.sh [deno task test arguments]
#   CI_AS_ROOT=1: run it as root (network namespaces for the dnsmasq test)
source "$(dirname "$0")/common.sh"
command=(npx -y "deno@${DENO_VERSION}" task test "$@")
if [ "${CI_AS_ROOT:-0}" = 1 ] && [ "$(id -u)" -ne 0 ]; then
  exec sudo -n env "PATH=$PATH" "HOME=$HOME" "CI=${CI:-}" "${command[@]}"
fi
exec "${command[@]}"
