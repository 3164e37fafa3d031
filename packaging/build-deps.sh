#!/usr/bin/env bash
# The build dependencies of `make deb` (packaging/debian/control's Build-Depends and
# the tools packaging/build-deb.sh runs). As root it installs what is missing, as
# tests/setup-deps.sh does for `make test`; otherwise it prints the exact apt-get
# line and fails, before the long release build starts.
set -eu

# One package per line; probed with dpkg-query, so a tool found elsewhere in PATH
# (a hand-built dh) does not stand in for the package debhelper's build needs.
NEEDED="
    debhelper
    dpkg-dev
    python3
"

missing=""
for pkg in $NEEDED; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    echo "build-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "build-deps: make deb needs:$missing" >&2
    echo "build-deps: install them with: sudo apt-get install$missing" >&2
    exit 1
fi
