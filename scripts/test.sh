#!/usr/bin/env bash
# Run the test suite after making sure the environment is set up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
