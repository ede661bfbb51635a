#!/usr/bin/env bash
# Set up everything flowctl needs, idempotently: system packages (Graphviz,
# fonts for Chinese/Russian labels), a virtual environment in .venv, and
# flowctl installed into it (with the development tools when --dev is given).
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

if [ "$dev" = 1 ]; then
  sh scripts/install-system-deps.sh --with-node
else
  sh scripts/install-system-deps.sh
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "flowctl needs Python 3.11 or newer; found: $("$python" --version 2>&1)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Reinstall only when the project metadata changed since the last install.
stamp=.venv/.flowctl-installed
want="$(cat pyproject.toml | sha256sum | cut -c1-16)-$dev"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ "$dev" = 1 ]; then
    .venv/bin/python -m pip install --quiet -e ".[dev]"
  else
    .venv/bin/python -m pip install --quiet -e .
  fi
  echo "$want" > "$stamp"
fi
