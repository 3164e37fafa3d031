"""8BITMIME downgrade (issue 4): 8-bit mail relayed to a server that does not announce
8BITMIME (tests/e2e/smtpsink.py announces no extensions) arrives as 7-bit MIME, the
8-bit part in quoted-printable, and decodes back to what was sent; with
disable_mime_output_conversion = yes it goes as it is."""

import email
import email.policy

import pytest

from harness import free_port, wait_for
from smtpsink import Sink

TEXT = "Grüße aus Köln, naïve café\n"
MESSAGE = (
    "From: a@example.org\r\nTo: r@remote.example\r\nSubject: 8bit\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n" + TEXT.replace("\n", "\r\n")
).encode()


@pytest.mark.parametrize("convert", [True, False])
def test_8bit_mail_to_a_server_without_8bitmime(make_instance, convert):
    port = free_port()
    sink = Sink(port)
    try:
        extra = {"relayhost": f"[127.0.0.1]:{port}"}
        if not convert:
            extra["disable_mime_output_conversion"] = "yes"
        inst = make_instance(main_extra=extra)
        with inst.smtp() as s:
            s.ehlo("client.example.org")
            s.sendmail("a@example.org", ["r@remote.example"], MESSAGE,
                       mail_options=["BODY=8BITMIME"])
        got = wait_for(lambda: sink.for_rcpt("r@remote.example"), timeout=40,
                       what="the message at the sink")
        raw = got[0][2].encode("latin-1")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg.get_content() == TEXT
        if convert:
            assert all(b < 0x80 for b in raw), raw
            assert msg["Content-Transfer-Encoding"] == "quoted-printable"
            assert b"na=C3=AFve" in raw
        else:
            assert "naïve".encode() in raw
            assert msg["Content-Transfer-Encoding"] == "8bit"
    finally:
        sink.stop()
