#!/usr/bin/env bash
# Unpacks Debian's postfix-policyd-spf-python (not installed: its package depends on
# postfix) into a cache folder and prints the folder; the SPF policy test runs
# <folder>/usr/bin/policyd-spf with the installed python3-spf-engine.
#   tests/fetch-policyd-spf.sh [cache-dir]   (default: tests/.cache/policyd-spf)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/.cache/policyd-spf}
if [ -x "$dest/usr/bin/policyd-spf" ]; then
    echo "$dest"
    exit 0
fi
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download postfix-policyd-spf-python >/dev/null 2>&1) || {
    echo "fetch-policyd-spf: apt-get download postfix-policyd-spf-python failed (run apt-get update?)" >&2
    exit 1
}
mkdir -p "$dest"
dpkg -x "$work"/postfix-policyd-spf-python_*.deb "$dest"
echo "$dest"
