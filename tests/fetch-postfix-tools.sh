#!/usr/bin/env bash
# Unpacks Debian's postfix package (not installed: no service, no users) into a cache
# folder, for Postfix's test tools smtp-sink and smtp-source used by the concurrency
# end-to-end test and the benchmark. Prints the folder. Run them with
# LD_LIBRARY_PATH=<folder>/usr/lib/postfix.
#   tests/fetch-postfix-tools.sh [cache-dir]   (default: tests/.cache/postfix)
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/fetch-deb.sh" postfix usr/sbin/smtp-sink usr/sbin/smtp-source \
    --dest "${1:-$here/.cache/postfix}"
