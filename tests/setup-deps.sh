#!/usr/bin/env bash
# Installs the Debian packages the tests talk to (real peers, not mocks). As root it
# installs what is missing; otherwise it prints the exact command to run and goes on,
# so the tests that need a missing peer are skipped with that reason.
set -eu

# One package:probe per line (probe: a file that proves it is installed), so
# additions by different changes do not collide.
NEEDED="
    python3-pytest:/usr/lib/python3/dist-packages/pytest
    strace:/usr/bin/strace
    swaks:/usr/bin/swaks
    libio-socket-ssl-perl:/usr/share/perl5/IO/Socket/SSL.pm
    dnsmasq-base:/usr/sbin/dnsmasq
    python3-aiosmtpd:/usr/lib/python3/dist-packages/aiosmtpd
    dovecot-lmtpd:/usr/lib/dovecot/lmtp
    dovecot-imapd:/usr/lib/dovecot/imap
    dovecot-core:/usr/sbin/dovecot
    e2fsprogs:/sbin/mke2fs
    mount:/sbin/losetup
    postgrey:/usr/sbin/postgrey
    python3-spf-engine:/usr/lib/python3/dist-packages/spf_engine
    haproxy:/usr/sbin/haproxy
    amavisd-new:/usr/sbin/amavisd
    shellcheck:/usr/bin/shellcheck
"

# Postfix's smtp-sink / smtp-source (unpacked from Debian's package, not installed)
# for the concurrency test and the benchmark.
"$(dirname "$0")/fetch-postfix-tools.sh" >/dev/null ||
    echo "setup-deps: Postfix test tools unavailable; the concurrency test will skip"
# Debian's policyd-spf (its package depends on postfix, so it is only unpacked).
"$(dirname "$0")/fetch-policyd-spf.sh" >/dev/null ||
    echo "setup-deps: policyd-spf unavailable; the SPF policy test will skip"

missing=""
for item in $NEEDED; do
    pkg=${item%%:*}
    probe=${item#*:}
    [ -e "$probe" ] || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    echo "setup-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "setup-deps: missing test peers:$missing"
    echo "setup-deps: install them with: sudo apt-get install$missing"
    echo "setup-deps: (end-to-end tests also need root: they start master as root)"
fi
