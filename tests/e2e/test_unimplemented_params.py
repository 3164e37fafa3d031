"""A parameter Rostfix accepts but does not implement never passes in silence (issue 16):
master logs each such setting of main.cf and master.cf -o with file, line and
parameter at start and at reload, `rostfix check` prints them, and `rostconf import`
lists them in IMPORT-REPORT grouped by what stops working. Settings that ask for what
Rostfix does anyway (soft_bounce = no, biff = no) stay quiet."""

import re
import shutil
import subprocess
from pathlib import Path

from harness import BIN, free_port, wait_for

FIXTURES = Path(__file__).resolve().parents[2] / "crates" / "config" / "testdata"


def message(path, line, param, stops, service=None):
    where = f" (-o of service {service})" if service else ""
    return (f"{path}, line {line}: parameter {param}{where} is not implemented by Rostfix; "
            f"its setting has no effect ({stops})")


def line_of(path, prefix):
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if text.startswith(prefix):
            return number
    raise AssertionError(f"{prefix!r} not in {path}")


def test_start_reload_and_check_name_file_line_and_parameter(make_instance):
    inst = make_instance(start=False)
    main = inst.conf / "main.cf"
    master = inst.conf / "master.cf"
    main.write_text(main.read_text()
                    + "resolve_dequoted_address = no\n"
                    + "soft_bounce = yes\n"
                    + "biff = no\n"
                    + "smtpd_banner = $myhostname ESMTP # our banner\n")
    sub_port = free_port()
    master.write_text(master.read_text()
                      + f"127.0.0.1:{sub_port} inet n - y - - smtpd\n"
                      + "  -o defer_transports=smtp\n"
                      + "  -o soft_bounce=no\n")
    rewriting_line = line_of(main, "resolve_dequoted_address =")
    bounce_line = line_of(main, "soft_bounce =")
    banner_line = line_of(main, "smtpd_banner =")
    sub_line = line_of(master, f"127.0.0.1:{sub_port} inet")
    expected = [
        message(main, rewriting_line, "resolve_dequoted_address", "address rewriting"),
        message(main, bounce_line, "soft_bounce", "bounces and notices"),
        message(master, sub_line, "defer_transports", "routing",
                service=f"127.0.0.1:{sub_port}/inet"),
    ]

    check = inst.cmd("rostfix", "check")
    err = check.stderr.decode()
    for text in expected:
        assert f"warning: {text}" in err, err
    assert f"{main}, line {banner_line}: parameter smtpd_banner: the value ends in " \
        "\"# our banner\"" in err, err
    # What Rostfix does anyway is not reported: no false alarms.
    assert "parameter biff" not in err and "parameter soft_bounce (-o" not in err, err

    inst.start()
    log = inst.log_text()
    master_lines = [line for line in log.splitlines() if "/master[" in line]
    for text in expected:
        assert any(line.endswith(f"warning: {text}") for line in master_lines), log

    # A setting added later is reported by the reload that reads it.
    main.write_text(main.read_text() + "always_add_missing_headers = yes\n")
    later = message(main, line_of(main, "always_add_missing_headers ="),
                    "always_add_missing_headers", "header processing")
    inst.cmd("rostfix", "reload")
    wait_for(lambda: f"warning: {later}" in inst.log_text(),
             what="the reload's warning for always_add_missing_headers")


def test_import_report_groups_what_stops_working(workdir):
    source = Path(workdir) / "import-src"
    target = Path(workdir) / "import-dst"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    main = (FIXTURES / "ubuntu-dovecot-main.cf").read_text()
    (source / "main.cf").write_text(main + "resolve_dequoted_address = no\n"
                                    "soft_bounce = yes\nsoft_bounce = yes\n")
    (source / "master.cf").write_text((FIXTURES / "ubuntu-dovecot-master.cf").read_text())
    proc = subprocess.run(
        [str(BIN / "rostconf"), "import", "-n", str(source), str(target)],
        capture_output=True, env={"PATH": "/usr/bin:/bin", "LANG": "C"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = proc.stdout.decode()
    section = report.split("Accepted but not implemented by Rostfix", 1)[1]
    # The translation adds lines of its own at the top (the report names the lines of
    # the translated files); the later of the two soft_bounce lines is the one reported.
    translated = target / "main.cf"
    found = re.search(rf"  address rewriting:\n    - {re.escape(str(translated))}, line (\d+): "
                      r"resolve_dequoted_address = no\n",
                      section)
    assert found, report
    soft_bounce = int(found.group(1)) + 2
    assert f"  bounces and notices:\n    - {translated}, line {soft_bounce}: soft_bounce = yes\n" \
        in section, report
    # smtpd_milters are implemented: the submission service's milter macro is not
    # reported any more.
    assert "milter_macro_daemon_name" not in section, report
    assert "biff" not in section, report


def test_per_transport_limits_and_unreadable_table_types(make_instance):
    """No false alarm for TRANSPORT_destination_* of a master.cf service (qmgr reads
    them); postconf's "unused parameter" when no service has that name; a report for a
    per-transport knob qmgr does not read; and `rostfix check` fails naming file, line
    and parameter of a table type Rostfix cannot read (proxy:mongodb:), while dev: random
    sources, inet: sockets and URLs in the banner are not taken for tables."""
    inst = make_instance(start=False)
    main = inst.conf / "main.cf"
    main.write_text(main.read_text()
                    + "relay_destination_concurrency_limit = 3\n"
                    + "nosuch_destination_rate_delay = 1s\n"
                    + "relay_time_limit = 100s\n"
                    + "tls_random_source = dev:/dev/urandom\n"
                    + "smtpd_banner = $myhostname ESMTP see https://example.org/policy\n")
    check = inst.cmd("rostfix", "check", check=False)
    err = check.stderr.decode()
    assert "relay_destination_concurrency_limit" not in err, err
    assert f"{main}: unused parameter: nosuch_destination_rate_delay=1s" in err, err
    assert (f"{main}, line {line_of(main, 'relay_time_limit =')}: parameter relay_time_limit "
            "is not implemented by Rostfix") in err, err
    assert check.returncode == 0, err
    assert "dev:" not in err and "https:" not in err, err

    main.write_text(main.read_text()
                    + "virtual_mailbox_maps = proxy:mongodb:/etc/rostfix/mongo-virtual.cf\n")
    check = inst.cmd("rostfix", "check", check=False)
    err = check.stderr.decode()
    assert check.returncode != 0, err
    assert (f"{main}, line {line_of(main, 'virtual_mailbox_maps =')}: parameter "
            "virtual_mailbox_maps: table proxy:mongodb:/etc/rostfix/mongo-virtual.cf: type "
            "mongodb is not implemented by Rostfix; lookups in it fail") in err, err


def test_names_referenced_from_master_cf_are_not_unused(make_instance):
    """The Debian/Ubuntu guides define mua_client_restrictions in main.cf and use it
    only from master.cf (`-o smtpd_client_restrictions=$mua_client_restrictions`):
    no "unused parameter" for it, from rostfix check or at start; a misspelt -o name
    still is."""
    inst = make_instance(start=False)
    main = inst.conf / "main.cf"
    master = inst.conf / "master.cf"
    main.write_text(main.read_text()
                    + "mua_client_restrictions = permit_sasl_authenticated, reject\n")
    port = free_port()
    master.write_text(master.read_text()
                      + f"127.0.0.1:{port} inet n - y - - smtpd\n"
                      + "  -o smtpd_client_restrictions=$mua_client_restrictions\n"
                      + "  -o smtpd_tls_securty_level=encrypt\n")
    err = inst.cmd("rostfix", "check", check=False).stderr.decode()
    assert "mua_client_restrictions" not in err, err
    assert f"{master}: unused parameter: smtpd_tls_securty_level=encrypt" in err, err
    inst.start()
    wait_for(lambda: "unused parameter: smtpd_tls_securty_level" in inst.log_text(),
             what="master's warning for the misspelt -o name")
    assert "unused parameter: mua_client_restrictions" not in inst.log_text()
