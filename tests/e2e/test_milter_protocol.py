"""The finer points of the milter protocol (issue 15), against a libmilter peer
(tests/e2e/pymilter_peer.py on Debian's python3-milter) that asks for them:

- CONNECT carries the client's real port, and the macros {client_port},
  {daemon_addr} and {daemon_port} have values (before: port 0, no such macros);
  a client without a name is `[addr]`, as Postfix's milter8 sends it.
- SETSYMLIST: the peer names its own connect macros in its negotiation reply and gets
  those, {client_port} included, which the configured milter_connect_macros lacks.
- SMFIP_HDR_LEADSPC: header values go to the milter with their leading white space
  and folding as they are, and a header it adds keeps its value as written.
- SMFIP_RCPT_REJ: a recipient smtpd refused is shown to the milter, with
  {rcpt_mailer} = error, {rcpt_host} the status code, {rcpt_addr} the reply text.
- The unknown-command event: the milter's refusal of an unknown command is the reply
  instead of 502."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import wait_for  # noqa: E402
from test_milter import RCPT, _delivered, pymilter_peer  # noqa: E402


@pytest.fixture(scope="module")
def peer():
    with pymilter_peer("leadspc", "rcptrej") as port:
        yield port


def _header(data, name):
    m = re.search(rb"^" + name.encode() + rb":(.*)$", data, re.M)
    assert m, data[:3000]
    return m.group(1).decode()


def test_connect_port_symlist_leading_space_and_refused_recipients(make_instance, peer):
    inst = make_instance(main_extra={
        "smtpd_milters": f"inet:127.0.0.1:{peer}",
        # 127.0.0.2 is outside: a recipient elsewhere is refused (relay access).
        "mynetworks": "127.0.0.1/32",
    })
    with inst.smtp(source_address="127.0.0.2") as s:
        client_port = s.sock.getsockname()[1]
        s.ehlo("client.test")
        s.mail("alice@outside.test")
        code, _ = s.rcpt("bob@elsewhere.test")
        assert code in (454, 554), code
        assert s.rcpt(RCPT)[0] == 250
        code, _ = s.data(f"To: {RCPT}\r\nSubject: protocol-me\r\nX-Fold:  first\r\n"
                         "\tsecond\r\n\r\nbody\r\n")
        assert code == 250
    data = wait_for(lambda: _delivered("protocol-me"), timeout=30, what="delivery")
    # Under HDR_LEADSPC the peer's values (written without a leading space) are
    # queued as written: "Name:value".
    assert _header(data, "X-Milter-Connect") == (
        f"[127.0.0.2] 127.0.0.2 {client_port} client_port={client_port} "
        f"daemon_addr=127.0.0.1 daemon_port={inst.port}"), data[:3000]
    rejected = _header(data, "X-Milter-Rejected")
    assert re.fullmatch(r"<bob@elsewhere\.test> [45]\.7\.1 <bob@elsewhere\.test>: "
                        r"Relay access denied", rejected), rejected
    # The value as received: both leading spaces, the fold as CRLF + tab.
    assert _header(data, "X-Milter-Fold") == r"'  first\r\n\tsecond'", data[:3000]
    assert b"\nX-Lead:\tled\n" in data, data[:3000]


def test_unknown_command_refused_by_the_milter(make_instance, peer):
    inst = make_instance(main_extra={"smtpd_milters": f"inet:127.0.0.1:{peer}"})
    with inst.smtp() as s:
        s.ehlo("client.test")
        assert s.docmd("XYZZY plugh") == (550, b"5.7.2 unknown command refused by the test milter")
        assert s.docmd("FROBNICATE") == (502, b"5.5.2 Error: command not recognized")
        assert s.noop()[0] == 250
    assert "milter-reject: UNKNOWN from" in inst.log_text()
