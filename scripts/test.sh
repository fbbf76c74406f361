#!/usr/bin/env bash
# Run the linters and the test suite after making sure the environment is set up.
# mypy checks the code while the tests run (it needs one core for about 20 s); the run fails
# when either fails, and mypy's report is printed after the tests'.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
.venv/bin/ruff check .
mypy_log="$(mktemp)"
.venv/bin/mypy >"$mypy_log" 2>&1 &
mypy_pid=$!
tests=0
.venv/bin/python -m pytest "$@" || tests=$?
types=0
wait "$mypy_pid" || types=$?
echo "mypy:"
cat "$mypy_log"
rm -f "$mypy_log"
if [[ "$tests" -ne 0 ]]; then exit "$tests"; fi
exit "$types"
