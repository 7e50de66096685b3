#!/usr/bin/env bash
# By hand: try the newest release of every dependency in a throwaway virtualenv and run the tests.
# Nothing committed changes; if it passes and you decide to upgrade, run `UPGRADE=1 scripts/lock.sh`
# and commit requirements/. Extra arguments go to pytest (e.g. scripts/try-newest.sh -x -q tests/test_api_schema.py).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$(mktemp -d "${TMPDIR:-/tmp}/mailtickets-newest.XXXXXX")"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q --upgrade --upgrade-strategy eager -e '.[test]'
echo "newest versions installed:"
"$venv/bin/python" -m pip freeze --exclude-editable | sed 's/^/  /'
"$venv/bin/python" -m pytest "${@:--q}"
