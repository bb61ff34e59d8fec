#!/usr/bin/env bash
# Fetch the pinned Deno (npm package deno) into npm's cache and show its version.
source "$(dirname "$0")/common.sh"
deno_ --version
