//! verify's socket side: one short exchange per connection (a `Query` or an
//! `Update`, docs/ipc.md), served on a thread per connection, with the cache behind a
//! mutex; and the main thread's cleanup loop.
//!
//! Bounds: request frames of at most [`MAX_REQUEST`] bytes, a connection that says
//! nothing for [`IO_TIMEOUT`] is dropped, at most [`MAX_STREAMS`] at once.

use crate::cache::Cache;
use crate::probe;
use rostfix_proto::{
    read_message, write_message, VerifyReply, VerifyRequest, VerifyStatus, MAX_VERIFY_ADDRESS,
};
use rostfix_service::{ClientThreads, Connection};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A request carries one address and a reason text: well under this.
const MAX_REQUEST: u64 = 8192;
/// Each exchange is one request and one reply.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed (the client treats that as a
/// temporary failure).
const MAX_STREAMS: usize = 1024;

/// What the connection threads share.
#[derive(Debug, Clone)]
pub struct Shared {
    cache: Arc<Mutex<Cache>>,
    threads: ClientThreads,
    /// queue_directory ("." after confine).
    root: PathBuf,
    /// address_verify_sender, qualified; "" = `<>`.
    sender: String,
    myhostname: String,
}

impl Shared {
    pub fn new(cache: Cache, root: PathBuf, sender: String, myhostname: String) -> Shared {
        Shared {
            cache: Arc::new(Mutex::new(cache)),
            threads: ClientThreads::new("verify", MAX_STREAMS),
            root,
            sender,
            myhostname,
        }
    }

    /// The cache; every change to it is one insert or remove plus a file append, so
    /// a thread that panicked while holding it leaves it consistent: poisoning is
    /// ignored.
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers one request.
    pub fn handle(&self, req: &VerifyRequest, now: u64) -> VerifyReply {
        match req {
            VerifyRequest::Query { address } => {
                if let Err(why) = check_address(address) {
                    return VerifyReply::Failed(why);
                }
                let answer = match self.cache().query(address, now) {
                    Ok(a) => a,
                    Err(e) => {
                        log::warn!("verify cache: {e}");
                        return VerifyReply::Failed(format!("cache write error: {e}"));
                    }
                };
                if answer.probe {
                    // Outside the lock: writing the queue file waits for fsync.
                    match probe::send(&self.root, &self.sender, address, &self.myhostname) {
                        Ok(id) => log::debug!("{id}: probe for <{address}>"),
                        Err(e) => log::warn!("cannot send a probe for <{address}>: {e}"),
                    }
                }
                VerifyReply::Status {
                    status: answer.status,
                    text: answer.text,
                }
            }
            VerifyRequest::Update {
                address,
                status,
                text,
            } => {
                if let Err(why) = check_address(address) {
                    return VerifyReply::Failed(why);
                }
                if *status == VerifyStatus::Unknown {
                    return VerifyReply::Failed("an update must carry a result".into());
                }
                match self.cache().update(address, *status, text, now) {
                    Ok(()) => VerifyReply::Updated,
                    Err(e) => {
                        log::warn!("verify cache: {e}");
                        VerifyReply::Failed(format!("cache write error: {e}"))
                    }
                }
            }
        }
    }

    /// Runs the cleanup when due; called every second by the main thread.
    pub fn tick(&self, now: u64) {
        let mut cache = self.cache();
        match cache.maybe_cleanup(now) {
            Ok(true) => log::info!("cache cleanup: {} entries kept", cache.len()),
            Ok(false) => {}
            Err(e) => log::warn!("verify cache cleanup: {e}"),
        }
    }
}

/// An address the cache can hold: not empty, bounded, no control characters (the
/// file is line- and tab-separated; SMTP addresses never carry them).
fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err("empty address".into());
    }
    if address.len() > MAX_VERIFY_ADDRESS {
        return Err("address too long".into());
    }
    if address.chars().any(char::is_control) {
        return Err("control character in address".into());
    }
    Ok(())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Takes one new connection (from the skeleton's acceptor thread) onto a thread.
pub fn start_stream(conn: Connection, shared: &Shared) {
    let s = shared.clone();
    shared
        .threads
        .start(conn, move |stream| serve_one(stream, &s));
}

fn serve_one(mut stream: UnixStream, shared: &Shared) {
    if let Err(e) = stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
    {
        log::warn!("cannot set socket timeouts: {e}");
        return;
    }
    let reply = match read_message::<_, VerifyRequest>(&mut (&mut stream).take(MAX_REQUEST)) {
        Ok(req) => shared.handle(&req, now()),
        Err(e) => {
            log::warn!("bad verify request: {e}");
            VerifyReply::Failed(format!("malformed message: {e}"))
        }
    };
    if let Err(e) = write_message(&mut stream, &reply) {
        log::debug!("cannot answer a client: {e}");
    }
}

/// The main thread: cleanups, and exit when master is gone.
pub fn supervise(shared: &Shared, master_alive: &dyn Fn() -> bool) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if !master_alive() {
            log::debug!("master is gone; exiting");
            return;
        }
        shared.tick(now());
    }
}
