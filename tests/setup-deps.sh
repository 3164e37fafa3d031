#!/usr/bin/env bash
# Installs the Debian packages the tests talk to (real peers, not mocks). As root it
# installs what is missing; otherwise it prints the exact command to run and goes on,
# so the tests that need a missing peer are skipped with that reason.
set -eu

# One package:probe per line (probe: a file that proves it is installed), so
# additions by different changes do not collide.
NEEDED="
    python3-pytest:/usr/lib/python3/dist-packages/pytest
    python3-pytest-timeout:/usr/lib/python3/dist-packages/pytest_timeout.py
    strace:/usr/bin/strace
    swaks:/usr/bin/swaks
    openssl:/usr/bin/openssl
    libio-socket-ssl-perl:/usr/share/perl5/IO/Socket/SSL.pm
    dnsmasq-base:/usr/sbin/dnsmasq
    python3-aiosmtpd:/usr/lib/python3/dist-packages/aiosmtpd
    python3-jsonschema:/usr/lib/python3/dist-packages/jsonschema
    dovecot-lmtpd:/usr/lib/dovecot/lmtp
    dovecot-imapd:/usr/lib/dovecot/imap
    dovecot-core:/usr/sbin/dovecot
    e2fsprogs:/sbin/mke2fs
    mount:/sbin/losetup
    postgrey:/usr/sbin/postgrey
    python3-spf-engine:/usr/lib/python3/dist-packages/spf_engine
    haproxy:/usr/sbin/haproxy
    amavisd-new:/usr/sbin/amavisd
    postgresql-15:/usr/lib/postgresql/15/bin/postgres
    mariadb-server:/usr/sbin/mariadbd
    slapd:/usr/sbin/slapd
    ldap-utils:/usr/bin/ldapsearch
    memcached:/usr/bin/memcached
    shellcheck:/usr/bin/shellcheck
    nsd:/usr/sbin/nsd
    ldnsutils:/usr/bin/ldns-signzone
    pflogsumm:/usr/sbin/pflogsumm
    prometheus:/usr/bin/prometheus
    nginx-light:/usr/sbin/nginx
    redis-server:/usr/bin/redis-server
    python3-milter:/usr/lib/python3/dist-packages/Milter
    opendkim:/usr/sbin/opendkim
    opendkim-tools:/usr/sbin/opendkim-genkey
    python3-dkim:/usr/lib/python3/dist-packages/dkim
    python3-nacl:/usr/lib/python3/dist-packages/nacl
    rspamd:/usr/bin/rspamd
    python3-dnspython:/usr/lib/python3/dist-packages/dns
    spamass-milter:/usr/sbin/spamass-milter
    spamd:/usr/sbin/spamd
    opendmarc:/usr/sbin/opendmarc
    publicsuffix:/usr/share/publicsuffix/public_suffix_list.dat
    openjdk-17-jre-headless:/usr/lib/jvm/java-17-openjdk-amd64/bin/java
"

# The Pub/Sub emulator (test_bus_intake.py's peer) is Google's package
# google-cloud-cli-pubsub-emulator from packages.cloud.google.com, not Debian's: it is
# not in NEEDED (apt-get would fail the whole install where that repository is not
# configured); the bus intake test skips without it.
[ -e /usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator ] ||
    echo "setup-deps: Pub/Sub emulator missing (apt-get install google-cloud-cli-pubsub-emulator from Google's repository); the bus intake test will skip"

# Postfix's smtp-sink / smtp-source (unpacked from Debian's package, not installed)
# for the concurrency test and the benchmark.
"$(dirname "$0")/fetch-postfix-tools.sh" >/dev/null ||
    echo "setup-deps: Postfix test tools unavailable; the concurrency test will skip"
# Debian's policyd-spf (its package depends on postfix, so it is only unpacked).
"$(dirname "$0")/fetch-policyd-spf.sh" >/dev/null ||
    echo "setup-deps: policyd-spf unavailable; the SPF policy test will skip"
# Debian's prometheus-postfix-exporter (its package depends on postfix and rsyslog, so
# it is only unpacked; the binary is self-contained).
"$(dirname "$0")/fetch-deb.sh" prometheus-postfix-exporter \
    usr/bin/prometheus-postfix-exporter >/dev/null ||
    echo "setup-deps: prometheus-postfix-exporter unavailable; its log test will skip"

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
    # Database servers (postgresql, mariadb) would start system services on 5432/3306
    # from their postinst; the tests start their own on private ports, so service
    # starts are refused during the install (policy-rc.d, exit 101 = "not allowed").
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=yes
    fi
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing || status=$?
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    [ "${status:-0}" = 0 ] || exit "$status"
else
    echo "setup-deps: missing test peers:$missing"
    echo "setup-deps: install them with: sudo apt-get install$missing"
    echo "setup-deps: (end-to-end tests also need root: they start master as root)"
fi
