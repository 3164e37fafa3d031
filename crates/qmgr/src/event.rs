//! What the helper threads report to the main loop, which owns all queue state.

use crate::ipc::CallError;
use crate::route::Route;
use rostfix_proto::{
    BounceReply, BouncedRecipient, DeliveryRecipient, DeliveryReply, NoticeKind, Trigger,
};

/// One message on the main loop's channel.
#[derive(Debug)]
pub enum Event {
    /// A trigger read from public/qmgr.
    Trigger(Trigger),
    /// A delivery request finished.
    Delivered(DeliveryOutcome),
    /// A bounce request finished.
    Bounced(BounceOutcome),
    /// The shaping lookup thread's answer for a domain's MX hosts.
    Mx(String, crate::shaping::mx::MxAnswer),
    /// The shaping Redis thread's answer to a bucket's ask for tokens.
    Grant(String, crate::shaping::shared::Grant),
}

/// The result of one delivery request.
#[derive(Debug)]
pub struct DeliveryOutcome {
    pub queue_id: String,
    pub route: Route,
    pub requested: Vec<DeliveryRecipient>,
    pub reply: Result<DeliveryReply, CallError>,
    /// The worker (worker.rs) that ran the request; None when none did.
    pub worker: Option<u64>,
    /// The outcomes of the further messages of a group commit (crate::group_commit),
    /// which shared this request's slot; empty otherwise.
    pub batched: Vec<DeliveryOutcome>,
}

/// The result of one bounce request.
#[derive(Debug)]
pub struct BounceOutcome {
    pub queue_id: String,
    /// The recipients' record offsets and what was reported for them.
    pub recipients: Vec<(u64, BouncedRecipient)>,
    /// An expiry notice (log `status=expired`) rather than an agent's bounce.
    pub expired: bool,
    /// Non-delivery, delay warning or success notice.
    pub kind: NoticeKind,
    pub reply: Result<BounceReply, CallError>,
}
