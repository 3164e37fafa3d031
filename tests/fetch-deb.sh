#!/usr/bin/env bash
# Unpacks one of Debian's packages into a cache folder without installing it (no
# maintainer scripts, no dependencies pulled in) and prints the folder. For test peers
# whose package depends on postfix, which the tests must not install: Postfix's
# smtp-sink/smtp-source, policyd-spf, prometheus-postfix-exporter.
#   tests/fetch-deb.sh PACKAGE FILE-IN-PACKAGE... [--dest DIR]
# The package is fetched only when one of the FILEs (paths inside the package, e.g.
# usr/bin/policyd-spf) is missing under DIR (default: tests/.cache/PACKAGE).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: fetch-deb.sh PACKAGE FILE-IN-PACKAGE... [--dest DIR]" >&2; exit 2; }
pkg=$1
shift
dest=$here/.cache/$pkg
files=()
while [ $# -gt 0 ]; do
    case $1 in
        --dest) dest=$2; shift 2 ;;
        *) files+=("$1"); shift ;;
    esac
done
complete=yes
for f in "${files[@]}"; do
    [ -e "$dest/$f" ] || complete=no
done
if [ $complete = yes ]; then
    echo "$dest"
    exit 0
fi
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$pkg" >/dev/null 2>&1) || {
    echo "fetch-deb: apt-get download $pkg failed (run apt-get update?)" >&2
    exit 1
}
mkdir -p "$dest"
dpkg -x "$work"/"$pkg"_*.deb "$dest"
echo "$dest"
