#!/usr/bin/env bash
# The main job end to end on the bundled examples: lint every definition,
# run their scenario tests, draw every process, then run key-account-filing-approval from start to
# completion through its approval, and show its journal.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== flowctl lint processes/"
flowctl lint processes

echo
echo "== flowctl test: the scenarios in scenarios/, in memory, with their coverage"
flowctl test --min-coverage 100

if flowctl render --help >/dev/null 2>&1; then
  echo
  echo "== flowctl render --all -o out/diagrams (SVG, PNG and Mermaid)"
  flowctl render --all --format svg -o out/diagrams
  flowctl render --all --format png -o out/diagrams
  flowctl render --all --format mermaid -o out/diagrams
fi

# A fresh demo database, so the run is the same every time.
export FLOWCTL_DB=out/demo.db
rm -f out/demo.db out/demo.db-wal out/demo.db-shm
mkdir -p out

echo
echo "== alice (sales) starts a key-account filing for a customer she owns"
flowctl start key-account-filing-approval --as alice --set owner=alice \
  --note "Met at the trade fair; large retail chain"
id=key-account-filing-approval-1

echo
echo "== alice grades the customer a key account; the decision sends it to review"
flowctl advance "$id" --as alice --result done --set level=key --set type=retail

echo
echo "== a wrong user is refused, and nothing is written"
if flowctl advance "$id" --as bob --result approve; then
  echo "unexpected: bob could approve" >&2
  exit 1
fi

echo
echo "== carol (head of sales) sees it in her inbox and approves"
flowctl inbox --as carol
flowctl advance "$id" --as carol --result approve --comment "Strategic account"

echo
echo "== carol hands the account to a more experienced owner; the instance completes"
flowctl advance "$id" --as carol --result done --set owner=bob

echo
echo "== the instance card and the journal"
flowctl show "$id" --as carol
flowctl journal "$id" --as carol
flowctl journal verify
