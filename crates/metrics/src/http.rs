//! The HTTP side: just enough HTTP/1.1 for a Prometheus scrape. One connection at a
//! time on its own thread; the request head is read with a size bound (8 KiB) and a
//! time bound (5 s); `GET /metrics` gets the exposition, any other path 404, any other
//! method 405; the connection is closed after each answer.

use crate::queue_gauges;
use rostfix_metrics::Registry;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_HEAD: usize = 8192;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the accept thread.
pub fn serve(
    listener: TcpListener,
    registry: Arc<Mutex<Registry>>,
    auth: Option<crate::auth::Credentials>,
) {
    let spawned = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => answer(stream, &registry, auth.as_ref()),
                    Err(e) => {
                        log::warn!("accept on the metrics listener: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the metrics HTTP thread: {e}");
    }
}

/// The head without its blank line, when it is complete.
fn complete_head(head: &[u8]) -> Option<&str> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    std::str::from_utf8(&head[..end]).ok()
}

/// (status line, body) for a request line.
pub fn route(line: &str) -> (&'static str, bool) {
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => ("200 OK", true),
        (Some("GET"), Some(_)) => ("404 Not Found", false),
        _ => ("405 Method Not Allowed", false),
    }
}

fn answer(
    mut stream: TcpStream,
    registry: &Mutex<Registry>,
    auth: Option<&crate::auth::Credentials>,
) {
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let text = loop {
        if let Some(text) = complete_head(&head) {
            break text.to_string();
        }
        if head.len() >= MAX_HEAD {
            let _ = stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n.min(MAX_HEAD - head.len())]),
        }
    };
    if auth.is_some_and(|a| !a.admits(&text)) {
        let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"rostfix\"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let (status, ok) = route(text.lines().next().unwrap_or(""));
    let body = if ok {
        let gauges = queue_gauges::read(std::path::Path::new("."));
        let mut r = registry.lock().unwrap_or_else(|p| p.into_inner());
        r.set_gauges("rostfix_queue_messages", gauges.counts);
        r.set_gauges("rostfix_queue_oldest_message_age_seconds", gauges.oldest);
        r.render()
    } else {
        String::new()
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET /metrics HTTP/1.1"), ("200 OK", true));
        assert_eq!(route("GET / HTTP/1.1").0, "404 Not Found");
        assert_eq!(route("POST /metrics HTTP/1.1").0, "405 Method Not Allowed");
        assert_eq!(route("").0, "405 Method Not Allowed");
    }

    #[test]
    fn head_must_be_complete() {
        assert_eq!(complete_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(
            complete_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("GET /metrics HTTP/1.1\r\nHost: x")
        );
    }
}
