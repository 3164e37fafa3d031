//! The `pass` service type (Postfix's pass_trigger/pass_accept): a client connection
//! accepted by one daemon (postscreen) is handed to another (smtpd) by sending its
//! socket over a unix socket with SCM_RIGHTS. One message carries one byte of data
//! (`P`) and exactly one descriptor; a frame with the client's and server's endpoints
//! ([`PassedEndpoints`]) follows on the same channel, since behind a proxy the socket's
//! own addresses are not the client's. docs/ipc.md ("Passing a connection") has the
//! convention.

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};
use rostfix_proto::{read_message, write_message, FrameError, PassedEndpoints};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// The data byte that travels with the descriptor (a message must carry data).
const PASS_BYTE: u8 = b'P';

/// Why a passed connection could not be received.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("receive passed connection: {0}")]
    Io(#[from] io::Error),
    #[error("passed connection message carried no descriptor")]
    NoDescriptor,
    #[error("passed connection message carried {0} descriptors, want one")]
    TooMany(usize),
    #[error("passed descriptor is not a TCP socket")]
    NotTcp,
    #[error("passed connection endpoints: {0}")]
    Endpoints(#[from] FrameError),
}

/// A client connection received from a `pass` channel, with the endpoints its sender
/// established (which smtpd uses instead of getpeername/getsockname).
#[derive(Debug)]
pub struct Passed {
    pub stream: TcpStream,
    pub endpoints: PassedEndpoints,
}

/// Sends `client` and its `endpoints` over `channel` (writes bounded by the channel's
/// write timeout); the sender may close its own copy afterwards.
pub fn send_connection(
    channel: &UnixStream,
    client: &impl AsRawFd,
    endpoints: &PassedEndpoints,
) -> Result<(), PassError> {
    let fds = [client.as_raw_fd()];
    let data = [PASS_BYTE];
    let iov = [IoSlice::new(&data)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<UnixAddr>(channel.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(io::Error::from)?;
    write_message(&mut &*channel, endpoints)?;
    Ok(())
}

/// Receives one passed TCP connection and its endpoints from `channel` (bounded by the
/// channel's read timeout and by MAX_FRAME). Every descriptor that arrives is owned at
/// once, so none leaks whatever the message held.
pub fn receive_connection(channel: &UnixStream) -> Result<Passed, PassError> {
    let stream = receive_descriptor(channel)?;
    let endpoints = read_message(&mut &*channel)?;
    Ok(Passed { stream, endpoints })
}

/// The SCM_RIGHTS message: one data byte, so the endpoints frame behind it stays
/// unread on the stream.
fn receive_descriptor(channel: &UnixStream) -> Result<TcpStream, PassError> {
    let mut data = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut data)];
    // Room for a few descriptors, so that a sender passing more than one is seen
    // (and refused) instead of having the extra ones silently truncated.
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<UnixAddr>(
        channel.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut owned: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            owned.extend(fds.into_iter().map(own_received));
        }
    }
    match owned.len() {
        0 => Err(PassError::NoDescriptor),
        1 => {
            let fd = owned.remove(0);
            if !is_tcp_socket(&fd) {
                return Err(PassError::NotTcp);
            }
            let stream = TcpStream::from(fd);
            stream.set_nonblocking(false)?;
            Ok(stream)
        }
        n => Err(PassError::TooMany(n)),
    }
}

#[allow(unsafe_code)]
fn own_received(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in this process's table while delivering the
    // SCM_RIGHTS message just received; nothing else in the process knows the number
    // yet, so wrapping it makes this OwnedFd its only owner, which closes it once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn is_tcp_socket(fd: &OwnedFd) -> bool {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, AddressFamily, SockType};
    use nix::sys::socket::{SockaddrLike, SockaddrStorage};
    let stream = matches!(getsockopt(fd, sockopt::SockType), Ok(SockType::Stream));
    let family = getsockname::<SockaddrStorage>(fd.as_raw_fd())
        .ok()
        .and_then(|a| a.family());
    stream && matches!(family, Some(AddressFamily::Inet | AddressFamily::Inet6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn a_tcp_connection_crosses_and_still_talks_to_its_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        // The announced endpoints need not be the socket's (a proxied client).
        let endpoints = PassedEndpoints {
            client: "192.0.2.7:51234".parse().unwrap(),
            server: "198.51.100.1:25".parse().unwrap(),
        };
        send_connection(&a, &accepted, &endpoints).unwrap();
        drop(accepted);
        let passed = receive_connection(&b).unwrap();
        assert_eq!(passed.endpoints, endpoints);
        let mut passed = passed.stream;
        assert_eq!(passed.peer_addr().unwrap(), peer);
        passed.write_all(b"220 hi\r\n").unwrap();
        let mut buf = [0u8; 8];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"220 hi\r\n");
    }

    #[test]
    fn a_message_without_descriptor_is_refused() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"P").unwrap();
        assert!(matches!(
            receive_connection(&b),
            Err(PassError::NoDescriptor)
        ));
    }

    #[test]
    fn a_descriptor_without_endpoints_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let fds = [accepted.as_raw_fd()];
        let iov = [IoSlice::new(b"P")];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<UnixAddr>(a.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
        drop(a);
        assert!(matches!(
            receive_connection(&b),
            Err(PassError::Endpoints(_))
        ));
    }

    #[test]
    fn a_unix_socket_is_not_taken_for_a_client() {
        let (a, b) = UnixStream::pair().unwrap();
        let (other, _keep) = UnixStream::pair().unwrap();
        let endpoints = PassedEndpoints {
            client: "127.0.0.1:1".parse().unwrap(),
            server: "127.0.0.1:25".parse().unwrap(),
        };
        send_connection(&a, &other, &endpoints).unwrap();
        assert!(matches!(receive_connection(&b), Err(PassError::NotTcp)));
    }
}
