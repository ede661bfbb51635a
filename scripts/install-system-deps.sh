#!/bin/sh
# Install the system packages flowctl's diagrams need: Graphviz (`dot`) and
# fonts with Chinese, Japanese, Korean and Cyrillic glyphs.
#
# Idempotent: installs only what is missing and prints nothing when all is
# present. Works as root or through sudo on Debian/Ubuntu (apt-get); elsewhere
# it says what to install by hand and exits 0 without changing anything.
#
#   sh scripts/install-system-deps.sh          # install what is missing
#   sh scripts/install-system-deps.sh --check  # report only; exit 1 if something is missing
#   sh scripts/install-system-deps.sh --with-node  # also Node.js, npm and Chromium (for the tests)
#   sh scripts/install-system-deps.sh --with-postgres  # also a PostgreSQL server (for the tests)
set -eu

check_only=0
with_node=0
with_postgres=0
for arg in "$@"; do
    case "$arg" in
        --check) check_only=1 ;;
        --with-node) with_node=1 ;;
        --with-postgres) with_postgres=1 ;;
        -h|--help)
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
            exit 0 ;;
        *)
            echo "install-system-deps: unknown option '$arg' (allowed: --check, --with-node, --with-postgres, --help)" >&2
            exit 2 ;;
    esac
done

missing=""
if [ "$with_node" -eq 1 ]; then
    # the test suite parses Mermaid output with the real Mermaid library
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
    # the tests open the HTML report in a real browser (driven by Playwright)
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
fi

have_font() {
    # $1: a font family name; true when fontconfig knows a font of that family
    command -v fc-list >/dev/null 2>&1 && fc-list ":family=$1" family | grep -q .
}

if [ "$with_postgres" -eq 1 ]; then
    # the store's tests run against a real server (tests/pgserver.py starts one
    # from Debian's /usr/lib/postgresql/N/bin); pgbench is in the same package
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
fi

command -v dot >/dev/null 2>&1 || missing="$missing graphviz"
command -v fc-list >/dev/null 2>&1 || missing="$missing fontconfig"
have_font "Noto Sans CJK SC" || missing="$missing fonts-noto-cjk"
have_font "DejaVu Sans" || missing="$missing fonts-dejavu-core"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$check_only" -eq 1 ]; then
    echo "install-system-deps: missing:$missing" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: no apt-get here; install these yourself:$missing" >&2
    echo "  (Graphviz provides the 'dot' command; any font with CJK and Cyrillic glyphs," >&2
    echo "   e.g. Noto Sans CJK, makes non-Latin names readable in PNG diagrams)" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "install-system-deps: need root or sudo to install:$missing" >&2
    exit 1
fi

echo "install-system-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT

apt() {
    # run apt-get quietly; show its output only when it fails
    if ! $as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@" >"$log" 2>&1; then
        cat "$log" >&2
        return 1
    fi
}

# refresh the package lists when apt has none (fresh containers)
if [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' -e '^auxfiles$' || true)" ]; then
    apt update -qq
fi
# shellcheck disable=SC2086  # the package list is meant to split into words
if ! apt install -y -qq --no-install-recommends $missing 2>/dev/null; then
    # stale package lists: refresh once and retry
    apt update -qq
    # shellcheck disable=SC2086
    apt install -y -qq --no-install-recommends $missing
fi
if command -v fc-cache >/dev/null 2>&1; then
    fc-cache >/dev/null 2>&1 || true
fi
echo "install-system-deps: done" >&2
