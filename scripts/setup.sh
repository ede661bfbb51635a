#!/usr/bin/env bash
# Set up everything flowctl needs, idempotently: system packages (Graphviz,
# fonts for Chinese/Russian labels), a virtual environment in .venv, and
# flowctl installed into it, editable (with the development tools when --dev
# is given).
#
# Prints nothing when everything is already in place: it installs again only
# when what pip would install changed (pyproject's [build-system], [project]
# or [tool.setuptools]), or when --dev asks for the tools a plain set-up did
# not install. A development set-up also serves a plain one.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

if [ "$dev" = 1 ]; then
  sh scripts/install-system-deps.sh --with-node --with-postgres
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
  .venv/bin/python -m pip install --quiet --upgrade pip
fi

# The installation's key: the parts of pyproject.toml that decide what pip
# installs (not the settings of ruff, mypy or pytest).
want=$("$python" - <<'EOF'
import hashlib, json, tomllib
with open("pyproject.toml", "rb") as fh:
    doc = tomllib.load(fh)
parts = [doc.get("build-system"), doc.get("project"), doc.get("tool", {}).get("setuptools")]
print(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16])
EOF
)
stamp=.venv/.flowctl-installed
have=""
[ -f "$stamp" ] && [ -x .venv/bin/flowctl ] && have=$(cat "$stamp")
# the stamp is "<key> dev" or "<key> base"; a dev install serves both
if [ "$have" = "$want dev" ] || { [ "$dev" = 0 ] && [ "$have" = "$want base" ]; }; then
  exit 0
fi

# setuptools' default editable install (a finder that maps `flowctl` to
# ./flowctl, so edits and new modules take effect without reinstalling) warns,
# on every install, that a folder named like the package may shadow it: that
# folder is the package here, so that one informational warning is silenced.
# Later filters win, so it is appended to any the caller set.
export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation"
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$want dev" > "$stamp"
else
  .venv/bin/python -m pip install --quiet -e .
  echo "$want base" > "$stamp"
fi
