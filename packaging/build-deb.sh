#!/usr/bin/env bash
# Builds rostfix_VERSION_amd64.deb (issue 6) and rostfix-postfix-compat_VERSION_amd64.deb
# (Postfix's command names) from the release binaries with debhelper:
#   packaging/build-deb.sh [VERSION]       (make deb; DEB_VERSION=... make deb)
# Stages a binary-only debhelper tree under $DEB_DIR/stage (default target/deb):
# debian/ from packaging/debian, a changelog entry for VERSION, and root/ with the
# files at their installed paths; dpkg-buildpackage -b then does what debhelper does
# best (shlibs Depends, conffiles, systemd/init snippets, md5sums, man compression).
# The .deb lands in $DEB_DIR. Needs: cargo (release build done by make), debhelper,
# dpkg-dev, python3 (man pages from --help).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
target_dir=${CARGO_TARGET_DIR:-$repo/target}
# The binaries to package: the release build by default; `make test` packages the debug
# build it has just tested (ROSTFIX_DEB_BINARIES=target/debug), which exercises the same
# packaging, maintainer scripts and migration without a second, slower release build.
release=${ROSTFIX_DEB_BINARIES:-$target_dir/release}
deb_dir=${DEB_DIR:-$repo/target/deb}
workspace_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml")
version=${1:-${DEB_VERSION:-$workspace_version-1}}

for tool in dpkg-buildpackage dh python3; do
    command -v "$tool" >/dev/null || {
        echo "build-deb: $tool missing: apt-get install debhelper dpkg-dev python3" >&2
        exit 1
    }
done

# Every binary of the workspace, from cargo's own metadata: commands (rost*, sendmail)
# go to /usr/sbin, everything else is a daemon for daemon_directory.
mapfile -t bins < <(cd "$repo" && cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "bin" in t["kind"]: print(t["name"])' | sort -u)
commands=() daemons=()
for bin in "${bins[@]}"; do
    [ -x "$release/$bin" ] || { echo "build-deb: $release/$bin missing: run make release" >&2; exit 1; }
    case $bin in
        rost*|sendmail) commands+=("$bin") ;;
        *) daemons+=("$bin") ;;
    esac
done

# master.cf's live entries must name daemons we ship (others add services meanwhile).
while read -r command; do
    printf '%s\n' "${daemons[@]}" | grep -qx "$command" ||
        { echo "build-deb: etc/master.cf runs \"$command\", which the workspace does not build" >&2; exit 1; }
done < <(awk '/^[^#[:space:]]/ { print $8 }' "$repo/etc/master.cf" | sort -u)

stage=$deb_dir/stage/rostfix-$version
rm -rf "$deb_dir/stage"
mkdir -p "$stage"
cp -r "$here/debian" "$stage/debian"
root=$stage/root
install -d "$root/usr/sbin" "$root/usr/bin" "$root/usr/lib/rostfix" "$root/etc/rostfix" \
    "$root/usr/share/man/man8" "$root/usr/share/man/man1" "$root/usr/share/doc/rostfix" \
    "$root/usr/share/rostfix"
for bin in "${commands[@]}"; do install -m 0755 "$release/$bin" "$root/usr/sbin/"; done
for bin in "${daemons[@]}"; do install -m 0755 "$release/$bin" "$root/usr/lib/rostfix/"; done
install -m 0755 "$here/copy-chroot-files" "$here/requeue-postfix" "$root/usr/lib/rostfix/"
# Postfix's names for the same programs (argv[0] selects the behaviour).
ln -s rostmap "$root/usr/sbin/rostalias"
ln -s ../sbin/sendmail "$root/usr/bin/mailq"
ln -s ../sbin/sendmail "$root/usr/bin/newaliases"
install -d "$root/usr/lib"
ln -s ../sbin/sendmail "$root/usr/lib/sendmail"
install -m 0644 "$repo/etc/main.cf" "$repo/etc/master.cf" "$root/etc/rostfix/"
# A pristine copy for administrators and for the import (which overwrites main.cf).
install -m 0644 "$repo/etc/main.cf" "$root/usr/share/rostfix/main.cf.dist"
install -m 0644 "$repo/etc/master.cf" "$root/usr/share/rostfix/master.cf.dist"
install -m 0644 "$repo/etc/aliases" "$root/usr/share/rostfix/aliases.dist"

# Manual pages from each command's man-page style --help.
for bin in "${commands[@]}"; do
    "$release/$bin" --help | python3 "$here/help2roff.py" "$bin" 8 "$version" \
        > "$root/usr/share/man/man8/$bin.8"
done
ln -s rostmap.8 "$root/usr/share/man/man8/rostalias.8"
ln -s ../man8/sendmail.8 "$root/usr/share/man/man1/mailq.1"
ln -s ../man8/sendmail.8 "$root/usr/share/man/man1/newaliases.1"

# rostfix-postfix-compat: Postfix's command names as links to ours, in a package of
# their own rather than through update-alternatives: Postfix does not register those
# names as alternatives, so the links could only exist once Postfix is gone anyway,
# and a package that conflicts with postfix says so to dpkg, is removed in one
# command, and lets an administrator who wants only Rostfix's names go without them.
compat=$stage/root-compat
install -d "$compat/usr/sbin" "$compat/usr/share/man/man8"
for pair in postconf:rostconf postqueue:rostqueue postsuper:rostsuper postmap:rostmap \
    postalias:rostmap postcat:rostcat postfix:rostfix; do
    ln -s "${pair#*:}" "$compat/usr/sbin/${pair%%:*}"
    ln -s "${pair#*:}.8.gz" "$compat/usr/share/man/man8/${pair%%:*}.8.gz"
done

# Documentation an administrator needs after installing.
install -m 0644 "$repo/README.md" "$root/usr/share/doc/rostfix/"
for doc in ARCHITECTURE.md packaging.md; do
    [ -f "$repo/docs/$doc" ] && install -m 0644 "$repo/docs/$doc" "$root/usr/share/doc/rostfix/"
done

cat > "$stage/debian/changelog" <<CHANGELOG
rostfix ($version) unstable; urgency=medium

  * Build of the Rostfix workspace (git $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)).
    See /usr/share/doc/rostfix/README.md.gz for what this version does.

 -- Rostfix Developers <rostfix@lists.rostfix.org>  $(date -R)
CHANGELOG

(cd "$stage" && dpkg-buildpackage -b -us -uc --no-sign >"$deb_dir/build.log" 2>&1) || {
    tail -40 "$deb_dir/build.log" >&2
    exit 1
}
mv "$deb_dir/stage/rostfix_${version}_amd64.deb" \
    "$deb_dir/stage/rostfix-postfix-compat_${version}_amd64.deb" "$deb_dir/"
rm -f "$deb_dir/stage/"*.buildinfo "$deb_dir/stage/"*.changes
echo "$deb_dir/rostfix_${version}_amd64.deb"
echo "$deb_dir/rostfix-postfix-compat_${version}_amd64.deb"
