#!/usr/bin/env bash
# `make run` / `make stop`: a private Rostfix instance for trying things out.
# Config from etc/ copied to run/etc and pointed at run/ (queue, log, mail), smtpd on
# 127.0.0.1:$RUN_PORT, local delivery into Maildirs under run/mail/USER/.
# ROSTFIX_RUN_DIR puts the instance elsewhere (the tests use it).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run=${ROSTFIX_RUN_DIR:-$top/run}
bin="$top/target/debug"
port=${RUN_PORT:-2525}
conf="$run/etc"

case "${1:-start}" in
stop)
    if [ -f "$conf/main.cf" ]; then
        "$bin/rostfix" -c "$conf" stop || true
    fi
    exit 0
    ;;
start) ;;
*) echo "usage: $0 start|stop" >&2; exit 64 ;;
esac

mkdir -p "$run/mail" "$run/data"
if [ ! -f "$conf/main.cf" ]; then
    mkdir -p "$conf"
    cp "$top/etc/main.cf" "$top/etc/master.cf" "$top/etc/aliases" "$conf/"
fi
if [ "$(id -u)" = 0 ]; then
    # As root the suite confines itself for real: it needs its user and group.
    getent group rostdrop >/dev/null || groupadd --system rostdrop
    getent passwd rostfix >/dev/null || useradd --system --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin rostfix
    chmod 0755 "$run" "$run/mail"
fi
user=$(id -un)
# The instance's own aliases, so that the README's first message (to root@localhost)
# is delivered on a machine without /etc/aliases too: local defers every local
# recipient while an alias_maps table cannot be read, as Postfix's does. Root's mail
# goes to whoever runs the instance.
aliases="$conf/aliases"
[ -f "$aliases" ] || cp "$top/etc/aliases" "$aliases"
if [ "$user" != root ] && ! grep -q '^root:' "$aliases"; then
    printf '# make run: root'"'"'s mail goes to the user running the instance.\nroot: %s\n' \
        "$user" >>"$aliases"
fi
commands=$bin
if [ "$(id -u)" = 0 ]; then
    # Started by root the suite checks its set-group-id commands as installed (group
    # setgid_group, mode 2755). The instance gets its own command_directory holding
    # such copies of rostdrop and rostqueue (the build's files stay as cargo made
    # them) and links to the other commands.
    commands="$run/bin"
    mkdir -p "$commands"
    for f in "$bin"/*; do
        if [ ! -f "$f" ] || [ ! -x "$f" ]; then continue; fi
        name=${f##*/}
        case $name in
            rostdrop|rostqueue)
                rm -f "$commands/$name"
                cp "$f" "$commands/$name"
                chgrp rostdrop "$commands/$name"
                chmod 2755 "$commands/$name"
                ;;
            *) ln -sfn "$f" "$commands/$name" ;;
        esac
    done
fi
# The private instance keeps everything on this machine: remote recipients are refused
# by the error transport (a notice goes to the sender, or to postmaster), and DNS
# lookups go to a closed loopback port instead of the system's resolver.
# A demo AUTH user for the built-in SASL type (smtpd_sasl_type = rostfix): the
# passwd-file holds a SHA512-CRYPT hash made with openssl, never the password.
sasl_passwd="$conf/sasl_passwd"
if [ ! -f "$sasl_passwd" ]; then
    printf 'demo:{SHA512-CRYPT}%s\n' "$(openssl passwd -6 demo-password)" >"$sasl_passwd"
    chmod 0600 "$sasl_passwd"
fi
"$bin/rostconf" -c "$conf" -e \
    "smtpd_sasl_auth_enable=yes" \
    "smtpd_sasl_type=rostfix" \
    "smtpd_sasl_path=$sasl_passwd" \
    "queue_directory=$run/queue" \
    "daemon_directory=$bin" \
    "command_directory=$commands" \
    "alias_maps=hash:$aliases" \
    "alias_database=hash:$aliases" \
    "data_directory=$run/data" \
    "maillog_file=$run/maillog" \
    "mail_spool_directory=$run/mail/" \
    "home_mailbox=" \
    "inet_interfaces=127.0.0.1" \
    "mydestination=\$myhostname, localhost.\$mydomain, localhost" \
    "mynetworks=127.0.0.0/8" \
    "default_transport=error:5.7.1 this make run instance delivers to local Maildirs only (change default_transport in $conf/main.cf to send out)" \
    "rostfix_dns_servers=127.0.0.1:9"
"$bin/rostmap" -c "$conf" -a "hash:$aliases"
"$bin/rostconf" -c "$conf" -MX smtp/inet >/dev/null 2>&1 || true
"$bin/rostconf" -c "$conf" -M "127.0.0.1:$port/inet=127.0.0.1:$port inet n - y - - smtpd"

if "$bin/rostfix" -c "$conf" status >/dev/null 2>&1; then
    "$bin/rostfix" -c "$conf" reload
else
    "$bin/rostfix" -c "$conf" start
fi

cat <<MSG

Rostfix is running (configuration $conf, log $run/maillog).
Send it a message:
    swaks --server 127.0.0.1:$port --from you@example.org --to $user@localhost
or, without swaks:
    $bin/sendmail -C $conf -t <<'END'
    To: $user@localhost
    Subject: hello

    hello from sendmail
    END
It lands in $run/mail/$user/new/.  Queue: $bin/rostqueue -c $conf -p
AUTH (built-in SASL, user "demo", password "demo-password", in $sasl_passwd):
    swaks --server 127.0.0.1:$port --auth PLAIN --auth-user demo \\
          --auth-password demo-password --from demo@example.org --to $user@localhost
Stop it with: make stop
MSG
