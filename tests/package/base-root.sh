#!/usr/bin/env bash
# Makes (once) and caches the Debian root the package test starts from: a minbase
# bookworm from debootstrap, with Postfix installed (no daemon started: a policy-rc.d
# forbids it) and its .deb kept in apt's cache (requeue-postfix borrows postcat from
# it). The tarball is cached because debootstrap takes minutes; delete it to rebuild.
#   base-root.sh CACHE_TARBALL
# The mirror is the one this machine's apt uses.
set -euo pipefail
tarball=$1
[ -s "$tarball" ] && exit 0
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
build=$(mktemp -d "${TMPDIR:-/var/tmp}/rostfix-base.XXXXXX")
cleanup() {
    umount "$build/proc" 2>/dev/null || true
    rm -rf "$build"
}
trap cleanup EXIT
echo "base-root: debootstrap bookworm from $mirror (a few minutes, cached in $tarball)"
debootstrap --variant=minbase bookworm "$build" "$mirror" >"$build.log" 2>&1 ||
    { tail -20 "$build.log" >&2; exit 1; }
rm -f "$build.log"
printf '#!/bin/sh\nexit 101\n' >"$build/usr/sbin/policy-rc.d"
chmod 0755 "$build/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$build/etc/resolv.conf"
echo mail.example.org >"$build/etc/mailname"
mount -t proc proc "$build/proc"
chroot "$build" sh -c '
    set -e
    echo "postfix postfix/main_mailer_type select Internet Site" | debconf-set-selections
    echo "postfix postfix/mailname string mail.example.org" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postfix ssl-cert >/dev/null
    # keep the .deb files apt downloaded (postfix_*.deb is needed later)
    ls /var/cache/apt/archives/postfix_*.deb
'
umount "$build/proc"
chmod 0755 "$build"
mkdir -p "$(dirname "$tarball")"
tar -C "$build" -czf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "base-root: cached $tarball"
