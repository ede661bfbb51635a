#!/usr/bin/env bash
# The main job end to end on the bundled examples: lint every definition.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== flowctl lint processes/"
flowctl lint processes
