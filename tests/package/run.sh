#!/usr/bin/env bash
# The package test (issue 6), as root: in a fresh Debian root (debootstrap, cached by
# base-root.sh) with Postfix configured from the ubuntu-dovecot fixtures and one
# message deferred in Postfix's queue, it checks that
#   1. apt-get install ./rostfix_V1.deb ./rostfix-postfix-compat_V1.deb removes
#      Postfix, imports its configuration into /etc/rostfix (IMPORT-REPORT and the
#      postinst give Dovecot's socket changes); Dovecot (installed and configured as
#      the Ubuntu guide does) changed literally as IMPORT-REPORT says; once started
#      Rostfix delivers a message sent by SMTP to the local user's Maildir, SMTP AUTH
#      through Dovecot works on submission and submissions and the mail is read over
#      IMAP, also with the guide's LMTP variant; requeue-postfix delivers the
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
# Environment: ROSTFIX_PKG_CACHE (default /var/cache/rostfix-test; Dovecot's .debs are
# cached in its dovecot-debs/ by dovecot-debs.sh), KEEP_ROOT=1 to
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

# Sends one message as pkguser with SMTP AUTH (the password Dovecot checks) to
# 127.0.0.1:$1, with STARTTLS ($2 = starttls) or on a TLS connection ($2 = tls),
# subject $3 and Message-ID <$4>.
auth_send() {
    /usr/bin/python3 - "$@" <<'PY'
import smtplib, ssl, sys
port, mode, subject, msgid = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the root's snakeoil certificate
msg = (f"From: pkguser@example.org\r\nTo: pkguser@example.org\r\nSubject: {subject}\r\n"
       f"Message-ID: <{msgid}>\r\n\r\nbody of {subject}\r\n")
if mode == "tls":
    session = smtplib.SMTP_SSL("127.0.0.1", port, timeout=30, context=ctx)
else:
    session = smtplib.SMTP("127.0.0.1", port, timeout=30)
    session.starttls(context=ctx)
with session:
    session.login("pkguser", "pkgsecret")
    session.sendmail("pkguser@example.org", ["pkguser@example.org"], msg)
PY
}

# Waits up to $2 seconds for a message with subject $1 in pkguser's INBOX, read from
# Dovecot over IMAP.
imap_wait() {
    /usr/bin/python3 - "$imap_port" "$@" <<'PY'
import imaplib, sys, time
port, subject, deadline = int(sys.argv[1]), sys.argv[2], time.time() + int(sys.argv[3])
while True:
    try:
        with imaplib.IMAP4("127.0.0.1", port) as imap:
            imap.login("pkguser", "pkgsecret")
            imap.select("INBOX", readonly=True)
            _, found = imap.search(None, "SUBJECT", f'"{subject}"')
            if found and found[0].split():
                sys.exit(0)
    except (OSError, imaplib.IMAP4.error):
        pass
    if time.time() > deadline:
        sys.exit(1)
    time.sleep(0.5)
PY
}

# Does what IMPORT-REPORT's Dovecot section says, as an administrator would: each
# block it names (FILE, line N) becomes the block it gives after "with".
apply_dovecot_report() {
    /usr/bin/python3 - "$root" "$conf/IMPORT-REPORT" <<'PY'
import re, sys
root, report = sys.argv[1], open(sys.argv[2]).read()
section = report.split("\nDovecot (", 1)[1].split("\n\n", 1)[0]
items = re.findall(r"^  - (\S+), line (\d+): replace the block\n.*?^      with\n(.*?^        \}\n)",
                   section, re.S | re.M)
if not items:
    sys.exit("no Dovecot item in IMPORT-REPORT")
# Last line first, so the line numbers of the others stay right.
for path, line, block in sorted(items, key=lambda item: (item[0], -int(item[1]))):
    lines = open(root + path).read().split("\n")
    start = end = int(line) - 1
    while not lines[end].strip().startswith("}"):
        end += 1
    lines[start:end + 1] = [text[6:] for text in block.rstrip("\n").split("\n")]
    open(root + path, "w").write("\n".join(lines))
    print(f"{path}, line {line}: changed as IMPORT-REPORT says")
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

step "Dovecot as the Ubuntu guide sets it up (auth and LMTP sockets in Postfix's queue)"
"$here/dovecot-debs.sh" "$root" "$cache/dovecot-debs"
imap_port=$(free_port)
in_root useradd -m -s /bin/sh pkguser
# The guide's listeners, and IMAP on a 127.0.0.1 high port (shared network).
cat >"$root/etc/dovecot/conf.d/10-master.conf" <<EOF
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener /var/spool/postfix/private/dovecot-lmtp {
    mode = 0600
    user = postfix
    group = postfix
  }
}
service auth {
  unix_listener auth-userdb {
  }
  # Postfix smtp-auth
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
# The test's account: a password file instead of PAM; no TLS for IMAP on loopback.
sed -i 's/^!include auth-system.conf.ext/#&/' "$root/etc/dovecot/conf.d/10-auth.conf"
cat >"$root/etc/dovecot/local.conf" <<'EOF'
listen = 127.0.0.1
log_path = /var/log/dovecot.log
mail_location = maildir:~/Maildir
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# As the guides set it for LMTP: the MTA gives user@domain, the account is the user.
auth_username_format = %Ln
passdb {
  driver = passwd-file
  args = /etc/dovecot/test-users
}
userdb {
  driver = passwd
}
protocols = imap lmtp
EOF
printf 'pkguser:{PLAIN}pkgsecret\n' >"$root/etc/dovecot/test-users"

step "configure Postfix from the ubuntu-dovecot fixtures"
smtp_port=$(free_port) sub_port=$(free_port) subs_port=$(free_port)
fixtures=$repo/crates/config/testdata
# Paths adapted: the snakeoil certificate instead of Let's Encrypt's; inet services
# listen on 127.0.0.1 high ports (shared network). SASL through Dovecot as written.
sed -e 's#/etc/letsencrypt/live/example.org/fullchain.pem#/etc/ssl/certs/ssl-cert-snakeoil.pem#' \
    -e 's#/etc/letsencrypt/live/example.org/privkey.pem#/etc/ssl/private/ssl-cert-snakeoil.key#' \
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
    "$fixtures/ubuntu-dovecot-master.cf" >"$root/etc/postfix/master.cf"
printf 'alias@example.org pkguser\n' >"$root/etc/postfix/virtual"
in_root postmap /etc/postfix/virtual
in_root newaliases
in_root dovecot || fail "Dovecot does not start with the guide's configuration"

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
# Dovecot goes on running in the root: Postfix's own status says when it is gone.
while in_root postfix status >/dev/null 2>&1; do
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

step "Dovecot changed literally as IMPORT-REPORT says, then restarted"
apply_dovecot_report || fail "IMPORT-REPORT's Dovecot section could not be applied"
in_root doveadm stop
deadline=$(($(date +%s) + 30))
while [ -e "$root/run/dovecot/master.pid" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "Dovecot did not stop"
    sleep 0.5
done
in_root dovecot || { tail "$root/var/log/dovecot.log"; fail "Dovecot does not start after the change"; }
for socket in auth dovecot-lmtp; do
    [ "$(in_root stat -c %U:%G "/var/spool/rostfix/private/$socket")" = rostfix:rostfix ] ||
        fail "Dovecot's $socket socket is not rostfix:rostfix in Rostfix's queue"
done

step "start Rostfix (no systemd here: the init script, by hand)"
in_root /etc/init.d/rostfix start
master_running || fail "Rostfix did not start"
for file in resolv.conf services hosts nsswitch.conf; do
    [ -e "$root/var/spool/rostfix/etc/$file" ] || fail "chroot file etc/$file not copied"
done

step "a message sent by SMTP lands in the local user's Maildir"
smtp_send "$smtp_port" pkguser@example.org after-install
wait_maildir after-install 60 || fail "SMTP message not delivered to Maildir"

step "SMTP AUTH through Dovecot on submission (STARTTLS) and submissions (TLS); read over IMAP"
auth_send "$sub_port" starttls via-submission via-submission@example.org ||
    { tail "$root/var/log/mail.log"; fail "AUTH on the submission port fails"; }
auth_send "$subs_port" tls via-submissions via-submissions@example.org ||
    { tail "$root/var/log/mail.log"; fail "AUTH on the submissions port fails"; }
for subject in via-submission via-submissions; do
    imap_wait "$subject" 60 || fail "$subject not visible in Dovecot over IMAP"
done

step "the guide's LMTP variant: mailbox_transport to Dovecot's LMTP socket"
in_root rostconf -e mailbox_transport=lmtp:unix:private/dovecot-lmtp
in_root rostfix reload
auth_send "$sub_port" starttls via-lmtp via-lmtp@example.org || fail "AUTH fails after the reload"
imap_wait via-lmtp 60 || { tail "$root/var/log/mail.log"; fail "the LMTP variant's mail is not visible over IMAP"; }
grep -q 'msgid=<via-lmtp@example.org>: saved mail to INBOX' "$root/var/log/dovecot.log" ||
    { tail "$root/var/log/dovecot.log"; fail "the message did not reach Dovecot through LMTP"; }
[ ! -s "$root/var/mail/pkguser" ] || fail "mail landed in /var/mail/pkguser"
in_root rostconf -X mailbox_transport
in_root rostfix reload
in_root doveadm stop

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
