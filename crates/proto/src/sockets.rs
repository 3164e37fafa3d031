//! Where the services listen, relative to queue_directory, and the two wake-ups every
//! mail-queuing program sends: "new mail in incoming/" to qmgr, "new mail in
//! maildrop/" to pickup. The master creates `public/NAME` and `private/NAME` from
//! master.cf; these are the names the programs that talk to them agree on.

use crate::client::{send_trigger, TriggerError};
use crate::messages::Trigger;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// qmgr's trigger socket.
pub const QMGR_SOCKET: &str = "public/qmgr";
/// pickup's trigger socket.
pub const PICKUP_SOCKET: &str = "public/pickup";
/// showq's listing socket (rostqueue reads it when it may not read the queue).
pub const SHOWQ_SOCKET: &str = "public/showq";
/// The bounce service, which writes delivery status notices.
pub const BOUNCE_SOCKET: &str = "private/bounce";
/// The connection-rate service smtpd asks.
pub const ANVIL_SOCKET: &str = "private/anvil";

/// How long a program waits to hand a wake-up to qmgr or pickup. A wake-up that does
/// not get through is only a delay: both services scan their queue periodically.
pub const WAKEUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The socket of delivery transport `transport` (a master.cf service name):
/// `private/TRANSPORT`.
pub fn transport_socket(transport: &str) -> PathBuf {
    Path::new("private").join(transport)
}

/// Tells qmgr under `root` (queue_directory, "." after chdir) that mail is waiting.
pub fn wake_qmgr(root: &Path) -> Result<(), TriggerError> {
    send_trigger(&root.join(QMGR_SOCKET), &Trigger::Wakeup, WAKEUP_TIMEOUT)
}

/// Tells pickup under `root` that mail is waiting in maildrop/.
pub fn wake_pickup(root: &Path) -> Result<(), TriggerError> {
    send_trigger(&root.join(PICKUP_SOCKET), &Trigger::Wakeup, WAKEUP_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_message;
    use std::os::unix::net::UnixListener;

    #[test]
    fn wake_ups_go_to_the_named_sockets() {
        let root = std::env::temp_dir().join(format!("proto-sockets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("public")).unwrap();
        let qmgr = UnixListener::bind(root.join(QMGR_SOCKET)).unwrap();
        let pickup = UnixListener::bind(root.join(PICKUP_SOCKET)).unwrap();
        wake_qmgr(&root).unwrap();
        wake_pickup(&root).unwrap();
        for l in [qmgr, pickup] {
            let (mut c, _) = l.accept().unwrap();
            assert_eq!(read_message::<_, Trigger>(&mut c).unwrap(), Trigger::Wakeup);
        }
        assert!(matches!(
            wake_qmgr(&root.join("nowhere")),
            Err(TriggerError::Connect(..))
        ));
        assert_eq!(transport_socket("smtp"), Path::new("private/smtp"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
