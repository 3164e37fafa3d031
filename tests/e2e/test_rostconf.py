"""rostconf as postconf (-F, -P, -M#, -Mf, -Me, -l, -m, -a, -A, unused-parameter
warnings) and rostfix check as postfix check (queue file modes, set-group-id commands,
tables), on a real instance's configuration."""

import os
import time

from harness import free_port, wait_for


def conf(inst, *args, check=True):
    return inst.cmd("rostconf", *args, check=check)


def test_master_cf_fields_and_parameters(make_instance):
    inst = make_instance(start=False)
    master = inst.conf / "master.cf"
    master.write_text(master.read_text() +
                      "submission inet n - y - - smtpd\n"
                      "  -o syslog_name=rostfix/submission\n"
                      "  -o smtpd_tls_security_level=encrypt\n")
    out = conf(inst, "-F", "submission/inet/chroot", "pickup/unix/wakeup").stdout.decode()
    assert out.splitlines() == ["submission/inet/chroot = y", "pickup/unix/wakeup = 60"]
    assert "submission/inet/command = smtpd -o syslog_name=rostfix/submission" in \
        conf(inst, "-F", "submission/inet/command").stdout.decode()

    out = conf(inst, "-P", "submission/inet/smtpd_tls_security_level").stdout.decode()
    assert out == "submission/inet/smtpd_tls_security_level = encrypt\n"
    conf(inst, "-P", "submission/inet/smtpd_tls_security_level=may")
    conf(inst, "-Pe", "submission/inet/smtpd_sasl_auth_enable=yes")
    conf(inst, "-PX", "submission/inet/syslog_name")
    out = conf(inst, "-P", "submission/inet").stdout.decode().splitlines()
    assert out == ["submission/inet/smtpd_tls_security_level = may",
                   "submission/inet/smtpd_sasl_auth_enable = yes"]

    conf(inst, "-F", "submission/inet/chroot=n")
    assert conf(inst, "-h", "-F", "submission/inet/chroot").stdout == b"submission/inet/chroot = n\n" \
        or conf(inst, "-F", "submission/inet/chroot").stdout == b"submission/inet/chroot = n\n"

    folded = conf(inst, "-Mf", "submission/inet").stdout.decode().splitlines()
    assert folded[0].split()[:2] == ["submission", "inet"]
    assert folded[1:] == ["    -o smtpd_tls_security_level=may",
                          "    -o smtpd_sasl_auth_enable=yes"]

    conf(inst, "-Me", "submission/inet=submission inet n - n - 5 smtpd")
    assert conf(inst, "-F", "submission/inet/process_limit").stdout == \
        b"submission/inet/process_limit = 5\n"
    conf(inst, "-M#", "submission/inet")
    assert "#submission inet" in master.read_text()
    assert conf(inst, "-M", "submission/inet").stdout == b""
    # The edited file still starts: master.cf stays valid.
    inst.start()


def test_lists_and_unused_parameter_warnings(make_instance):
    inst = make_instance(start=False)
    assert conf(inst, "-l").stdout.decode().split() == ["fcntl", "dotlock"]
    maps = conf(inst, "-m").stdout.decode().split()
    for t in ["btree", "cidr", "hash", "pcre", "regexp", "texthash"]:
        assert t in maps
    assert "dovecot" in conf(inst, "-a").stdout.decode().split()
    assert conf(inst, "-A").returncode == 0

    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + "smtpd_recipient_restrictionz = permit\n"
                    "my_class = check_sender_access hash:/x\n"
                    "smtpd_restriction_classes = my_class\n"
                    "used_by_master = 1\n")
    master = inst.conf / "master.cf"
    master.write_text(master.read_text() + "sub inet n - y - - smtpd\n"
                      "  -o smtpd_client_restrictions=$used_by_master\n"
                      "  -o smtpd_bogus_knob=1\n")
    proc = conf(inst, "-n")
    err = proc.stderr.decode().splitlines()
    assert f"rostconf: warning: {main}: unused parameter: smtpd_recipient_restrictionz=permit" in err
    assert f"rostconf: warning: {master}: unused parameter: smtpd_bogus_knob=1" in err
    assert not any("my_class" in l or "used_by_master" in l for l in err), err
    assert len(err) == 2, err


def test_rostfix_check_like_postfix_check(make_instance):
    inst = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})
    with inst.smtp() as s:
        s.sendmail("alice@example.org", ["bob@remote.example"], b"Subject: x\r\n\r\nx\r\n")
    wait_for(lambda: inst.queue_ids("deferred"), what="a deferred message")
    proc = inst.cmd("rostfix", "check")
    assert b"warning" not in proc.stderr, proc.stderr   # the harness installs it right

    qid = inst.queue_ids("deferred")[0]
    os.chmod(inst.queue / "deferred" / qid, 0o644)
    os.chmod(inst.bindir / "rostqueue", 0o755)
    table = inst.conf / "access"
    table.write_text("example.org OK\n")
    inst.cmd("rostmap", f"hash:{table}")
    time.sleep(1.1)
    table.write_text("example.org REJECT\n")   # edited, not rebuilt
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + f"smtpd_sender_restrictions = check_sender_access hash:{table}\n")
    err = inst.cmd("rostfix", "check").stderr.decode()
    assert f"group or other accessible (mode 0644): {inst.queue}/deferred/{qid}" in err, err
    assert f"{inst.bindir}/rostqueue: mode should be 2755, is 0755" in err, err
    assert f"database {table}.rdb is older than source file {table}" in err, err

    main.write_text(main.read_text() + f"transport_maps = regexp:{inst.conf}/missing\n")
    proc = inst.cmd("rostfix", "check", check=False)
    assert proc.returncode == 1
    assert f"cannot read table regexp:{inst.conf}/missing" in proc.stderr.decode(), proc.stderr
