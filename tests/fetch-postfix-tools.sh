#!/usr/bin/env bash
# Unpacks Debian's postfix package (not installed: no service, no users) into a cache
# folder, for Postfix's test tools smtp-sink and smtp-source used by the concurrency
# end-to-end test and the benchmark. Prints the folder. Run them with
# LD_LIBRARY_PATH=<folder>/usr/lib/postfix.
#   tests/fetch-postfix-tools.sh [cache-dir]   (default: tests/.cache/postfix)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/.cache/postfix}
if [ -x "$dest/usr/sbin/smtp-sink" ] && [ -x "$dest/usr/sbin/smtp-source" ]; then
    echo "$dest"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download postfix >/dev/null 2>&1) || {
    echo "fetch-postfix-tools: apt-get download postfix failed (run apt-get update?)" >&2
    exit 1
}
mkdir -p "$dest"
dpkg -x "$work"/postfix_*.deb "$dest"
echo "$dest"
