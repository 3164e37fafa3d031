#!/usr/bin/env bash
# Installs Dovecot (core, imapd, lmtpd) into the package test's root from .debs
# cached in CACHE_DIR; the first run downloads them, with the dependencies the root
# lacks, through the root's own apt (the mirror base-root.sh used) and fills the
# cache. Nothing is started: the root's policy-rc.d forbids it.
#   dovecot-debs.sh ROOT CACHE_DIR
set -euo pipefail
root=$1 cache=$2
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
packages=(dovecot-core dovecot-imapd dovecot-lmtpd)
if [ ! -s "$cache/complete" ]; then
    echo "dovecot-debs: downloading ${packages[*]} (once, cached in $cache)"
    touch "$root/tmp/before-download"
    in_root apt-get update -qq
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        --download-only "${packages[@]}" >/dev/null
    mkdir -p "$cache"
    find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' \
        -newer "$root/tmp/before-download" -exec cp {} "$cache/" \;
    ls "$cache" >"$cache/complete"
fi
mkdir -p "$root/tmp/dovecot-debs"
cp "$cache"/*.deb "$root/tmp/dovecot-debs/"
in_root sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/dovecot-debs/*.deb' \
    >"$root/tmp/dovecot-debs.log" 2>&1 || { cat "$root/tmp/dovecot-debs.log"; exit 1; }
rm -rf "$root/tmp/dovecot-debs"
