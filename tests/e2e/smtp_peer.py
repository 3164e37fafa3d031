"""A test SMTP server for the smtp client tests, run as its own process:
aiosmtpd (Debian's python3-aiosmtpd) on 127.0.0.1:PORT with STARTTLS from CERT/KEY,
optionally requiring STARTTLS and AUTH (PLAIN/LOGIN against one user:password).
Each accepted message is written to OUTDIR as NNN.eml with a first line
`X-Peer: ip:port tls=yes|no auth=user reused=yes|no` so tests see which connection
carried it and whether its TLS session was resumed.

usage: smtp_peer.py PORT CERT KEY OUTDIR [--auth USER:PASSWORD]
"""

import asyncio
import ssl
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, outdir):
        self.outdir = Path(outdir)
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        tls = "yes" if session.ssl else "no"
        data = getattr(session, "auth_data", None)
        user = data.login.decode() if isinstance(data, LoginPassword) else None
        ssl_object = server.transport.get_extra_info("ssl_object") if session.ssl else None
        reused = "yes" if ssl_object is not None and ssl_object.session_reused else "no"
        head = (f"X-Peer: {session.peer[0]}:{session.peer[1]} tls={tls} auth={user} "
                f"reused={reused}\r\n")
        path = self.outdir / f"{self.count:03d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(head.encode() + envelope.original_content)
        tmp.rename(path)
        return "250 2.0.0 Ok: queued as PEER%d" % self.count


def main():
    if len(sys.argv) not in (5, 7):
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    port, cert, key, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    creds = None
    if len(sys.argv) == 7 and sys.argv[5] == "--auth":
        user, _, password = sys.argv[6].partition(":")
        creds = (user.encode(), password.encode())
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and creds is not None and \
            (auth_data.login, auth_data.password) == creds
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    kwargs = dict(tls_context=ctx, enable_SMTPUTF8=True)
    if creds is not None:
        kwargs.update(require_starttls=True, auth_required=True, auth_require_tls=True,
                      authenticator=authenticator)
    controller = Controller(Saver(outdir), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    main()
