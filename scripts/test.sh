#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, ruff, mypy (strict), pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
[ -d tests/mermaid/node_modules ] || npm ci --prefix tests/mermaid --silent --no-audit --no-fund
echo "== ruff"
.venv/bin/ruff check flowctl tests
echo "== mypy (strict)"
.venv/bin/mypy
echo "== import contracts (docs/architecture.md)"
.venv/bin/lint-imports --no-cache
echo "== pytest"
.venv/bin/pytest "$@"
