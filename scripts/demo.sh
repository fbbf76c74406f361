#!/usr/bin/env bash
# Set up, generate demo dealer data and run the pipeline on the embedded default (local Spark).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
CUSTOMERS="${CUSTOMERS:-2000}"
.venv/bin/cdp generate --customers "$CUSTOMERS" --seed 42 --out data/raw
exec .venv/bin/cdp run pipeline --as-of 2026-07-01
