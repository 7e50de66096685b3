#!/usr/bin/env bash
# Regenerate the committed locks from pyproject.toml: the exact versions, with hashes, that the README's
# commands and .ci/run install. Unattended: run it after changing a dependency, then commit requirements/.
# Versions already in a lock are kept where they still satisfy pyproject.toml (uv prefers them), so a
# new dependency does not silently upgrade the others; scripts/try-newest.sh is the deliberate upgrade.
set -euo pipefail
cd "$(dirname "$0")/.."

uv_command() {
  if command -v uv >/dev/null 2>&1; then
    uv "$@"
  else
    python3 -m pip install -q --user uv >/dev/null 2>&1 || python3 -m pip install -q uv >/dev/null
    python3 -m uv "$@"
  fi
}

compile() {  # compile OUTPUT [uv pip compile options...]
  local output="$1"
  shift
  uv_command pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
    --no-header --annotation-style line ${UPGRADE:+--upgrade} "$@" -o "$output"
}

mkdir -p requirements
compile requirements/runtime.lock
compile requirements/test.lock --extra test
echo "locks written: requirements/runtime.lock requirements/test.lock"
