#!/usr/bin/env bash
# The package test (issue 6), as root: in a fresh Debian root (debootstrap, cached by
# base-root.sh) with Postfix configured from the ubuntu-dovecot fixtures and one
# message deferred in Postfix's queue, it checks that
#   1. apt-get install ./rostfix_V1.deb ./rostfix-postfix-compat_V1.deb removes
#      Postfix, imports its configuration into /etc/rostfix (IMPORT-REPORT and the
#      postinst give Dovecot's socket changes), and once started Rostfix delivers a
#      message sent by SMTP to the local user's Maildir; requeue-postfix delivers the
#      Postfix leftover and keeps a held one held with its arrival time; Postfix's
#      command names (postqueue -p, postconf -n, postcat -q, postsuper -d ALL) work;
#   2. an upgrade to V2 keeps mail queued while Rostfix was stopped and delivers it;
#   3. apt-get remove stops Rostfix and keeps /etc/rostfix;
#   4. apt-get purge leaves nothing (dpkg -L, the accounts, /var/spool/rostfix);
#   5. lintian reports no errors on the .debs; the maintainer scripts pass sh -n and
#      the shellcheck linter, and define every error handler they call.
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
for tool in debootstrap lintian dh dpkg-buildpackage shellcheck; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "package-test: installing:$missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap lintian debhelper dpkg-dev shellcheck >/dev/null
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
compat1=$work/debs/rostfix-postfix-compat_${v1}_amd64.deb
compat2=$work/debs/rostfix-postfix-compat_${v2}_amd64.deb

step "lintian"
lintian --fail-on error --suppress-tags-from-file /dev/null "$deb1" "$compat1" | tee "$work/lintian.txt" ||
    fail "lintian reports errors (above)"

step "maintainer scripts: sh -n, shellcheck, every error handler defined"
dpkg-deb -e "$deb1" "$work/control"
for script in postinst prerm postrm; do
    sh -n "$work/control/$script" || fail "$script: sh -n fails"
    # debhelper's snippets call `|| HANDLER` (dh_installinit --error-handler).
    for handler in $(sed -n 's/.*|| *\([A-Za-z_][A-Za-z_0-9]*\)$/\1/p' "$work/control/$script" | sort -u); do
        case $handler in true | false) continue ;; esac
        grep -q "^$handler()" "$work/control/$script" ||
            fail "$script calls $handler, which it does not define"
    done
done
shellcheck "$work/control/postinst" "$work/control/prerm" "$work/control/postrm" \
    "$repo/packaging/requeue-postfix" "$repo/packaging/copy-chroot-files" ||
    fail "shellcheck reports problems in the maintainer scripts (above)"

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
# The guide's Dovecot sockets in Postfix's queue directory (only the file: Dovecot
# itself is not installed in this root).
mkdir -p "$root/etc/dovecot/conf.d"
cat >"$root/etc/dovecot/conf.d/10-master.conf" <<'EOF'
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service lmtp {
  unix_listener /var/spool/postfix/private/dovecot-lmtp {
    mode = 0600
    user = postfix
    group = postfix
  }
}
EOF
in_root postmap /etc/postfix/virtual
in_root newaliases

step "two messages deferred in Postfix's queue, one of them then held"
in_root postconf -e defer_transports=local
in_root postfix start >/dev/null 2>&1
for subject in held-in-postfix left-in-postfix; do
    printf 'Subject: %s\n\nqueued by postfix\n' "$subject" |
        in_root /usr/sbin/sendmail -f root@example.org pkguser@example.org
    deadline=$(($(date +%s) + 60))
    until [ -n "$(find "$root/var/spool/postfix/deferred" -type f 2>/dev/null)" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "Postfix did not defer the message"
        sleep 0.5
    done
    id=$(basename "$(find "$root/var/spool/postfix/deferred" -type f | head -n 1)")
    if [ "$subject" = held-in-postfix ]; then
        in_root postsuper -h "$id" >/dev/null 2>&1
        held_id=$id
        arrived=$(in_root postcat -e -q "$id" | sed -n 's/^message_arrival_time: //p' | head -n 1)
        held_arrival=$(in_root date -d "$arrived" +%s)
    else
        deferred_id=$id
    fi
done
# The requeue must keep the arrival time, not take the time of the switch.
sleep 2
in_root postconf -X defer_transports
in_root postfix stop >/dev/null 2>&1
deadline=$(($(date +%s) + 30))
while [ -n "$(root_pids)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "Postfix did not stop"
    sleep 0.5
done
echo "deferred in Postfix: $deferred_id; held: $held_id (arrived $held_arrival)"

step "install V1: replaces Postfix, imports its configuration"
cp "$deb1" "$deb2" "$compat1" "$compat2" "$root/tmp/"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/${deb1##*/}" \
    "/tmp/${compat1##*/}" >"$log" 2>&1 ||
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
grep -q "hold: $held_id" "$conf/IMPORT-REPORT" || fail "held message not reported"
# Dovecot: the report gives each listener as it must become (path, user, group), and
# the postinst printed it, since AUTH and LMTP are down until it is done.
for socket in auth dovecot-lmtp; do
    tr '\n' '|' <"$conf/IMPORT-REPORT" | grep -qF "with|        unix_listener /var/spool/rostfix/private/$socket {|          mode = 06" ||
        { cat "$conf/IMPORT-REPORT"; fail "IMPORT-REPORT lacks the new $socket listener"; }
done
[ "$(grep -c '^          user = rostfix$' "$conf/IMPORT-REPORT")" = 2 ] ||
    fail "IMPORT-REPORT does not give the sockets to user rostfix"
[ "$(grep -c '^          group = rostfix$' "$conf/IMPORT-REPORT")" = 2 ] ||
    fail "IMPORT-REPORT does not give the sockets to group rostfix"
grep -q "Dovecot still uses Postfix's queue directory" "$log" &&
    grep -q 'unix_listener /var/spool/rostfix/private/auth {' "$log" ||
    { cat "$log"; fail "the postinst did not print Dovecot's changes"; }
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

step "requeue-postfix hands Postfix's messages to Rostfix: deferred delivered, held kept held"
in_root /usr/lib/rostfix/requeue-postfix | tee "$work/requeue.txt"
wait_maildir left-in-postfix 60 || fail "Postfix's deferred message not delivered"
# postcat's section markers, if any, are not part of the message.
grep -rqs '^\*\*\* ' "$root/home/pkguser/Maildir/new/" && fail "postcat's marker lines were delivered"
new_held=$(sed -n "s/^requeue-postfix: $held_id: .*: queued as \([0-9A-F]*\) (held).*/\1/p" "$work/requeue.txt")
[ -n "$new_held" ] || fail "requeue-postfix did not queue $held_id as held"
[ -f "$root/var/spool/rostfix/hold/$new_held" ] || fail "$new_held is not in Rostfix's hold queue"
grep -rqs '^Subject: held-in-postfix$' "$root/home/pkguser/Maildir/new/" &&
    fail "the message held in Postfix was delivered"
in_root rostqueue -j | grep -q "\"queue_id\":\"$new_held\",\"arrival_time\":$held_arrival," ||
    { in_root rostqueue -j; fail "$new_held does not keep Postfix's arrival time $held_arrival"; }

step "Postfix's command names after the switch (rostfix-postfix-compat)"
in_root postconf -n | grep -qx 'myhostname = mail.example.org' || fail "postconf -n"
in_root postqueue -p | grep -q "^$new_held!" || { in_root postqueue -p; fail "postqueue -p"; }
in_root postcat -q "$new_held" >"$work/postcat.txt" || fail "postcat -q $new_held fails"
grep -qx "\*\*\* ENVELOPE RECORDS hold/$new_held \*\*\*" "$work/postcat.txt" &&
    grep -qx 'Subject: held-in-postfix' "$work/postcat.txt" &&
    grep -qx 'recipient: pkguser@example.org' "$work/postcat.txt" ||
    { cat "$work/postcat.txt"; fail "postcat -q does not show the message"; }
in_root postmap -q alias@example.org hash:/etc/rostfix/virtual | grep -qx pkguser || fail "postmap -q"
in_root postsuper -d ALL 2>&1 | grep -q "Deleted: 1 message" || fail "postsuper -d ALL"
in_root postqueue -p | grep -qx 'Mail queue is empty' || fail "postsuper -d ALL left mail queued"
in_root postfix status || fail "postfix status"

step "upgrade V1 -> V2 keeps mail queued while stopped, restarts, delivers it"
in_root rostfix stop
printf 'Subject: queued-before-upgrade\n\nwaiting in maildrop\n' |
    in_root /usr/sbin/sendmail -f root@example.org pkguser@example.org
[ -n "$(find "$root/var/spool/rostfix/maildrop" -type f)" ] || fail "nothing queued in maildrop"
# Let the maintainer scripts start services this time (a policy-rc.d that allows:
# without one invoke-rc.d blocks when there is no init system): the restart path.
printf '#!/bin/sh\nexit 0\n' >"$root/usr/sbin/policy-rc.d"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/${deb2##*/}" \
    "/tmp/${compat2##*/}" >"$log" 2>&1 ||
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
[ ! -e "$root/usr/sbin/postqueue" ] || fail "rostfix-postfix-compat's links left after remove"

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
