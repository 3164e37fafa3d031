#!/usr/bin/env bash
# The package test (issue 6), as root: in a fresh Debian root (debootstrap, cached by
# base-root.sh) with Postfix configured from the ubuntu-dovecot fixtures and one
# message deferred in Postfix's queue, it checks that
#   1. apt-get install ./rostfix_V1.deb removes Postfix, imports its configuration
#      into /etc/rostfix, and once started Rostfix delivers a message sent by SMTP to
#      the local user's Maildir (and requeue-postfix delivers the Postfix leftover);
#   2. an upgrade to V2 keeps mail queued while Rostfix was stopped and delivers it;
#   3. apt-get remove stops Rostfix and keeps /etc/rostfix;
#   4. apt-get purge leaves nothing (dpkg -L, the accounts, /var/spool/rostfix);
#   5. lintian reports no errors on the .deb.
# The root shares this machine's network: every service listens on 127.0.0.1 high
# ports; no systemd inside, so services are started by hand (policy-rc.d forbids
# maintainer scripts to start them, except in the upgrade step, where the init
# script's restart is exercised). Everything is stopped and unmounted at the end,
# even on failure.
#   tests/package/run.sh          (make test-package: the release build; make test runs it
#                                  on the debug build with ROSTFIX_DEB_BINARIES=target/debug)
# Environment: ROSTFIX_PKG_CACHE (default /var/cache/rostfix-test), KEEP_ROOT=1 to
# keep the root for inspection (processes are still stopped, /proc unmounted).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
started=$(date +%s)

if [ "$(id -u)" != 0 ]; then
    echo "package test: SKIP: needs root (debootstrap, chroot, dpkg)" >&2
    exit 0
fi
missing=""
for tool in debootstrap lintian dh dpkg-buildpackage; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "package-test: installing:$missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap lintian debhelper dpkg-dev >/dev/null
fi

cache=${ROSTFIX_PKG_CACHE:-/var/cache/rostfix-test}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/rostfix-pkgtest.XXXXXX")
root=$work/root
log=$work/test.log

step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - started)); }
fail() {
    echo "package test: FAIL: $*" >&2
    exit 1
}
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# Processes whose root directory is our chroot: only ever ones this test started.
root_pids() {
    local pid
    for pid in /proc/[0-9]*; do
        if [ "$(readlink "$pid/root" 2>/dev/null)" = "$root" ]; then
            echo "${pid#/proc/}"
        fi
    done
}

cleanup() {
    local status=$? pids
    pids=$(root_pids || true)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        sleep 1
        pids=$(root_pids || true)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
    if [ -d "$root" ]; then
        # Deepest mount first.
        grep -o " $root/[^ ]*" /proc/self/mounts | sort -r | while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done
    fi
    if [ "${KEEP_ROOT:-}" = 1 ] || [ $status != 0 ]; then
        echo "package test: root kept in $root (remove with rm -rf $work)"
    else
        rm -rf "$work"
    fi
    echo "package test: $([ $status = 0 ] && echo PASS || echo FAIL) in $(($(date +%s) - started))s"
}
trap cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Sends one message by SMTP to 127.0.0.1:$1 for $2 with subject $3.
smtp_send() {
    /usr/bin/python3 - "$@" <<'PY'
import smtplib, sys
port, rcpt, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = f"From: sender@example.net\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"
with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
    s.sendmail("sender@example.net", [rcpt], msg)
PY
}

# Waits up to $2 seconds for a message with subject $1 in the test user's Maildir.
wait_maildir() {
    local subject=$1 deadline=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if grep -rqs "^Subject: $subject\$" "$root/home/pkguser/Maildir/new/"; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

master_running() { in_root rostfix status >/dev/null 2>&1; }

step "build the package twice (V1, V2)"
ws_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml")
v1="$ws_version-1" v2="$ws_version-2"
DEB_DIR=$work/debs "$repo/packaging/build-deb.sh" "$v1" >/dev/null
DEB_DIR=$work/debs "$repo/packaging/build-deb.sh" "$v2" >/dev/null
deb1=$work/debs/rostfix_${v1}_amd64.deb deb2=$work/debs/rostfix_${v2}_amd64.deb

step "lintian"
lintian --fail-on error --suppress-tags-from-file /dev/null "$deb1" | tee "$work/lintian.txt" ||
    fail "lintian reports errors (above)"

step "Debian root with Postfix (cache: $cache)"
"$here/base-root.sh" "$cache/bookworm-postfix.tar.gz"
mkdir -p "$root"
tar -C "$root" -xzf "$cache/bookworm-postfix.tar.gz"
# "/" must be searchable by the unprivileged users (tar restored mktemp's 0700).
chmod 0755 "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"

step "configure Postfix from the ubuntu-dovecot fixtures"
smtp_port=$(free_port) sub_port=$(free_port) subs_port=$(free_port)
in_root useradd -m -s /bin/sh pkguser
fixtures=$repo/crates/config/testdata
# Paths adapted: the snakeoil certificate instead of Let's Encrypt's. Dovecot is not
# installed, so SASL stays configured (smtpd_sasl_type/path, carried by the import)
# but disabled; inet services listen on 127.0.0.1 high ports (shared network).
sed -e 's#/etc/letsencrypt/live/example.org/fullchain.pem#/etc/ssl/certs/ssl-cert-snakeoil.pem#' \
    -e 's#/etc/letsencrypt/live/example.org/privkey.pem#/etc/ssl/private/ssl-cert-snakeoil.key#' \
    -e 's#^smtpd_sasl_auth_enable = yes#smtpd_sasl_auth_enable = no#' \
    "$fixtures/ubuntu-dovecot-main.cf" >"$root/etc/postfix/main.cf"
sed -i 's/^inet_protocols = all/inet_protocols = ipv4/' "$root/etc/postfix/main.cf"
cat >>"$root/etc/postfix/main.cf" <<EOF

# package test additions
virtual_alias_maps = hash:/etc/postfix/virtual
maillog_file = /var/log/mail.log
EOF
sed -e "s#^smtp      inet#127.0.0.1:$smtp_port inet#" \
    -e "s#^submission inet#127.0.0.1:$sub_port inet#" \
    -e "s#^submissions inet#127.0.0.1:$subs_port inet#" \
    -e 's#smtpd_sasl_auth_enable=yes#smtpd_sasl_auth_enable=no#' \
    "$fixtures/ubuntu-dovecot-master.cf" >"$root/etc/postfix/master.cf"
printf 'alias@example.org pkguser\n' >"$root/etc/postfix/virtual"
in_root postmap /etc/postfix/virtual
in_root newaliases

step "one message deferred in Postfix's queue"
in_root postconf -e defer_transports=local
in_root postfix start >/dev/null 2>&1
printf 'Subject: left-in-postfix\n\nqueued by postfix\n' |
    in_root /usr/sbin/sendmail -f root@example.org pkguser@example.org
deadline=$(($(date +%s) + 60))
until [ -n "$(find "$root/var/spool/postfix/deferred" -type f 2>/dev/null)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "Postfix did not defer the message"
    sleep 0.5
done
deferred_id=$(basename "$(find "$root/var/spool/postfix/deferred" -type f | head -n 1)")
in_root postconf -X defer_transports
in_root postfix stop >/dev/null 2>&1
deadline=$(($(date +%s) + 30))
while [ -n "$(root_pids)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "Postfix did not stop"
    sleep 0.5
done
echo "deferred in Postfix: $deferred_id"

step "install V1: replaces Postfix, imports its configuration"
cp "$deb1" "$deb2" "$root/tmp/"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/${deb1##*/}" >"$log" 2>&1 ||
    { cat "$log"; fail "apt-get install of V1 failed"; }
grep -E 'Removing postfix|importing|rostfix' "$log" || true
[ "$(in_root dpkg-query -W -f '${db:Status-Abbrev}' postfix)" = "rc " ] ||
    fail "postfix is not removed: $(in_root dpkg-query -W -f '${db:Status-Abbrev}' postfix)"
conf=$root/etc/rostfix
grep -qx 'myhostname = mail.example.org' "$conf/main.cf" || fail "myhostname not carried"
grep -qx 'smtpd_sasl_type = dovecot' "$conf/main.cf" || fail "SASL settings not carried"
grep -qx 'virtual_alias_maps = hash:/etc/rostfix/virtual' "$conf/main.cf" ||
    fail "virtual_alias_maps not translated"
[ -s "$conf/virtual.rdb" ] || fail "virtual table not rebuilt"
[ "$(in_root rostmap -q alias@example.org hash:/etc/rostfix/virtual)" = pkguser ] ||
    fail "rebuilt virtual table does not answer"
grep -q "^127.0.0.1:$smtp_port inet" "$conf/master.cf" || fail "smtp service not carried"
grep -q 'syslog_name=rostfix/submission' "$conf/master.cf" || fail "syslog_name not translated"
grep -q '^#cleanup ' "$conf/master.cf" || fail "cleanup service not commented out"
grep -q "deferred: $deferred_id" "$conf/IMPORT-REPORT" || fail "deferred message not reported"
grep -q requeue-postfix "$conf/IMPORT-REPORT" || fail "no re-inject command in the report"
[ -s "$root/etc/aliases.rdb" ] || fail "newaliases (rostalias) did not run"
for program in rostdrop rostqueue; do
    [ "$(in_root stat -c %G:%a /usr/sbin/$program)" = rostdrop:2755 ] ||
        fail "$program is $(in_root stat -c %G:%a /usr/sbin/$program), not rostdrop:2755"
done
[ "$(in_root stat -c %U:%a /var/spool/rostfix/maildrop)" = rostfix:730 ] ||
    fail "queue directories not created"
for file in usr/bin/mailq usr/bin/newaliases usr/lib/sendmail usr/sbin/sendmail \
    usr/lib/rostfix/master lib/systemd/system/rostfix.service etc/init.d/rostfix; do
    [ -e "$root/$file" ] || fail "/$file missing"
done
master_running && fail "Rostfix started although policy-rc.d forbids it"
grep -q "'rostfix check' failed" "$log" && { cat "$log"; fail "the imported configuration fails rostfix check"; }
in_root rostfix check || fail "rostfix check fails on the imported configuration"

step "start Rostfix (no systemd here: the init script, by hand)"
in_root /etc/init.d/rostfix start
master_running || fail "Rostfix did not start"
for file in resolv.conf services hosts nsswitch.conf; do
    [ -e "$root/var/spool/rostfix/etc/$file" ] || fail "chroot file etc/$file not copied"
done

step "a message sent by SMTP lands in the local user's Maildir"
smtp_send "$smtp_port" pkguser@example.org after-install
wait_maildir after-install 60 || fail "SMTP message not delivered to Maildir"

step "requeue-postfix hands Postfix's deferred message to Rostfix"
in_root /usr/lib/rostfix/requeue-postfix
wait_maildir left-in-postfix 60 || fail "Postfix's deferred message not delivered"

step "upgrade V1 -> V2 keeps mail queued while stopped, restarts, delivers it"
in_root rostfix stop
printf 'Subject: queued-before-upgrade\n\nwaiting in maildrop\n' |
    in_root /usr/sbin/sendmail -f root@example.org pkguser@example.org
[ -n "$(find "$root/var/spool/rostfix/maildrop" -type f)" ] || fail "nothing queued in maildrop"
# Let the maintainer scripts start services this time (a policy-rc.d that allows:
# without one invoke-rc.d blocks when there is no init system): the restart path.
printf '#!/bin/sh\nexit 0\n' >"$root/usr/sbin/policy-rc.d"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/${deb2##*/}" >"$log" 2>&1 ||
    { cat "$log"; fail "apt-get install of V2 failed"; }
[ "$(in_root dpkg-query -W -f '${Version}' rostfix)" = "$v2" ] || fail "not upgraded"
grep -q 'Starting Rostfix mail transfer agent' "$log" ||
    { cat "$log"; fail "the postinst did not start Rostfix through invoke-rc.d"; }
master_running || fail "Rostfix not running after the upgrade"
wait_maildir queued-before-upgrade 60 || fail "mail queued before the upgrade not delivered"
[ "$(in_root dpkg-query -W -f '${Conffiles}' rostfix | grep -c 'main.cf')" = 1 ] ||
    fail "main.cf is not a conffile"
grep -qx 'myhostname = mail.example.org' "$conf/main.cf" || fail "upgrade lost the configuration"

step "apt-get remove stops Rostfix (policy-rc.d forbids: prerm stops it itself), keeps config"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q rostfix >"$log" 2>&1 ||
    { cat "$log"; fail "apt-get remove failed"; }
sleep 1
[ -z "$(root_pids)" ] || fail "processes still running after remove: $(root_pids)"
[ -f "$conf/main.cf" ] || fail "remove deleted /etc/rostfix/main.cf"

step "apt-get purge leaves nothing behind"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q rostfix >"$log" 2>&1 ||
    { cat "$log"; fail "apt-get purge failed"; }
in_root dpkg -L rostfix >/dev/null 2>&1 && fail "dpkg still knows rostfix's files"
in_root getent passwd rostfix && fail "user rostfix left behind"
in_root getent group rostdrop && fail "group rostdrop left behind"
in_root getent group rostfix && fail "group rostfix left behind"
for path in var/spool/rostfix etc/rostfix var/lib/rostfix usr/lib/rostfix usr/sbin/rostfix; do
    [ ! -e "$root/$path" ] || fail "/$path left behind"
done
in_root dpkg-statoverride --list '/usr/sbin/*' && fail "statoverride left behind"

step "done"
echo "lintian (no errors; warnings and info below):"
cat "$work/lintian.txt"
