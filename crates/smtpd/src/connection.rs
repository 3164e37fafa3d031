//! One client connection, from the socket master handed over to the end of its SMTP
//! session: the PROXY header when smtpd runs behind HAProxy (rostfix_proto::haproxy),
//! or the endpoints postscreen sent with a passed connection; socket timeouts, the
//! pre-greeting and anvil gate for TCP clients, then a [`Session`] over plain or TLS
//! transport that writes into the incoming queue.

use crate::client::ClientInfo;
use crate::gate;
use crate::queue_sink::SpoolSink;
use crate::reply::Reply;
use crate::session::Session;
use crate::settings::Settings;
use crate::tls::NetStream;
use rostfix_proto::haproxy;
use rostfix_service::Connection;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

/// smtpd_upstream_proxy_protocol = haproxy: the client the proxy announces
/// (Some(None) for a LOCAL header: the socket's peer stands). On a bad, slow or missing
/// header the client is told 421 and dropped (None), as Postfix hangs up when it cannot
/// know whom it talks to.
fn proxied_client(
    settings: &Settings,
    stream: &mut TcpStream,
    limit: std::time::Duration,
) -> Option<Option<ClientInfo>> {
    match haproxy::receive(stream, limit) {
        Ok(p) => Some(
            p.endpoints
                .map(|(client, server)| ClientInfo::from_endpoints(client, Some(server))),
        ),
        Err(e) => {
            log::warn!("{e}");
            let who = "unknown[unknown]";
            log::info!("connect from {who}");
            let reply = Reply::new(
                421,
                "4.3.0",
                format!("{} Server local error", settings.myhostname),
            );
            let mut out = Vec::new();
            reply.render_into(&mut out);
            if let Err(e) = stream
                .set_write_timeout(Some(settings.timeout))
                .and_then(|()| stream.write_all(&out))
            {
                log::debug!("write to {who} failed: {e}");
            }
            log::info!("disconnect from {who}");
            None
        }
    }
}

/// A TCP client whose address is known: its name, socket timeouts, the pre-greeting
/// and anvil gate, then the session.
fn serve_tcp(
    settings: &Settings,
    service: &str,
    tls: Option<Arc<crate::tls::TlsServer>>,
    mut stream: TcpStream,
    mut client: ClientInfo,
) {
    let wrapper = settings.tls.wrappermode;
    // After confine() the working directory is queue_directory.
    let sink = SpoolSink::new(Path::new("."));
    let rc = &settings.restrictions;
    if let (true, Some(dns)) = (rc.peername_lookup, rc.dns.as_ref()) {
        crate::peer_name::resolve(&mut client, dns.as_ref());
    }
    if let Err(e) = stream
        .set_read_timeout(Some(settings.timeout))
        .and_then(|()| stream.set_write_timeout(Some(settings.timeout)))
    {
        log::warn!("cannot set socket timeouts for {}: {e}", client.log_name());
        return;
    }
    // Pre-greeting check and anvil limits (gate.rs).
    let Some(anvil) = gate::admit(settings, service, &client, &mut stream) else {
        return;
    };
    Session::new(settings, client, sink)
        .with_anvil(anvil)
        .run_over(NetStream::new(stream, tls), wrapper);
}

/// Serves one client connection to the end.
pub fn handle(
    settings: &Settings,
    service: &str,
    tls: Option<Arc<crate::tls::TlsServer>>,
    conn: Connection,
) {
    let wrapper = settings.tls.wrappermode;
    crate::metrics::connection(service);
    // After confine() the working directory is queue_directory.
    let sink = SpoolSink::new(Path::new("."));
    match conn {
        Connection::Tcp(mut stream) => {
            let mut client = match stream.peer_addr() {
                Ok(addr) => ClientInfo::from_endpoints(addr, stream.local_addr().ok()),
                Err(e) => {
                    log::warn!("getpeername: {e}");
                    return;
                }
            };
            if let Some(limit) = settings.session.upstream_proxy {
                match proxied_client(settings, &mut stream, limit) {
                    Some(Some(real)) => client = real,
                    Some(None) => {}
                    None => return,
                }
            }
            serve_tcp(settings, service, tls, stream, client);
        }
        // From postscreen: the client it screened (behind HAProxy, the one the PROXY
        // header named, which the socket's peer is not). postscreen has read the
        // header already, so smtpd_upstream_proxy_protocol does not apply here.
        Connection::Passed(passed) => {
            let e = &passed.endpoints;
            let client = ClientInfo::from_endpoints(e.client, Some(e.server));
            serve_tcp(settings, service, tls, passed.stream, client);
        }
        Connection::Unix(stream) => {
            if let Err(e) = stream
                .set_read_timeout(Some(settings.timeout))
                .and_then(|()| stream.set_write_timeout(Some(settings.timeout)))
            {
                log::warn!("cannot set socket timeouts: {e}");
                return;
            }
            Session::new(settings, ClientInfo::local_socket(), sink)
                .run_over(NetStream::new(stream, tls), wrapper);
        }
    }
}
