#!/usr/bin/env bash
# The benchmarks, from a fresh clone: flowctl against its peers in one run.
# Options: --quick (fewer runs), --only 1,3 (some rows), --record (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python bench/run.py "$@"
