#!/usr/bin/env bash
# Unpacks Debian's postfix-policyd-spf-python (not installed: its package depends on
# postfix) into a cache folder and prints the folder; the SPF policy test runs
# <folder>/usr/bin/policyd-spf with the installed python3-spf-engine.
#   tests/fetch-policyd-spf.sh [cache-dir]   (default: tests/.cache/policyd-spf)
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/fetch-deb.sh" postfix-policyd-spf-python usr/bin/policyd-spf \
    --dest "${1:-$here/.cache/policyd-spf}"
