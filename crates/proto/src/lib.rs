//! The IPC protocol between Rostfix services: one request and one reply type per service,
//! serialized with serde (JSON) and framed by a 4-byte big-endian length.
//!
//! Every read is bounded: a frame longer than [`MAX_FRAME`] is refused before any
//! allocation, so a confused or hostile peer on a local socket cannot make a service
//! allocate without limit. Timeouts are the caller's business (set them on the socket).
//! The wire format is documented in docs/ipc.md.

#![forbid(unsafe_code)]

mod agent_stream;
mod anvil;
mod client;
pub mod dsn_args;
mod frame;
pub mod haproxy;
mod log_escape;
mod messages;
mod metrics;
mod names;
mod passed;
mod sockets;
mod status;
mod verify;
mod xtext;

pub use agent_stream::{serve_delivery_stream, StreamEnd, MAX_DELIVERY_REQUEST};
pub use anvil::{AnvilClient, AnvilReply, AnvilRequest};
pub use client::{connect_unix, send_trigger, TriggerError};
pub use frame::{read_frame, read_message, write_frame, write_message, FrameError, MAX_FRAME};
pub use log_escape::log_escape;
pub use messages::*;
pub use metrics::{MetricSample, MetricsReport, SampleKind, MAX_METRICS_SAMPLES, METRICS_SOCKET};
pub use names::{is_valid_dsn, is_valid_queue_id, Dsn, NameError, QueueId, QueueName, ALL_QUEUES};
pub use passed::PassedEndpoints;
pub use sockets::{
    transport_socket, wake_pickup, wake_qmgr, ANVIL_SOCKET, BOUNCE_SOCKET, PICKUP_SOCKET,
    QMGR_SOCKET, SHOWQ_SOCKET, WAKEUP_TIMEOUT,
};
pub use status::{ChildStatus, StatusKind, STATUS_LEN};
pub use verify::{
    verify_call, VerifyCallError, VerifyReply, VerifyRequest, VerifyStatus, MAX_VERIFY_ADDRESS,
    MAX_VERIFY_TEXT, VERIFY_SOCKET,
};
pub use xtext::xtext;
