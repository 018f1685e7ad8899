#!/usr/bin/env bash
# Runs the pytest suite and turns pytest's exit codes into an honest verdict.
# Exit code 5 ("no tests collected") is a failure here: this project has tests, so collecting
# none means the run was mis-pointed, not that everything passed.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests (exit 5): treating as a failure." >&2
  exit 1
fi
exit "$rc"
