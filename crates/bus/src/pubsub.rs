//! Google Cloud Pub/Sub as a [`Bus`], over its REST API (v1): `POST
//! /v1/{subscription}:pull`, `:acknowledge` and `:modifyAckDeadline` with JSON bodies.
//! The emulator answers the same API over plain HTTP on 127.0.0.1; the real service
//! over https with `Authorization: Bearer TOKEN`, the token read from a file that an
//! outside tool keeps fresh (e.g. `gcloud auth print-access-token` from a timer, or a
//! metadata-server fetcher). The file is re-read for every request through a
//! directory handle opened before confinement, so a chrooted bus still sees a token
//! that was replaced (written elsewhere and renamed over the old name).

use crate::http::Client;
use crate::source::{Bus, BusError};
use crate::submission::BusMessage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

/// Longest token file read.
const MAX_TOKEN: u64 = 64 * 1024;
/// Most ack ids in one acknowledge or modifyAckDeadline request (Pub/Sub's request
/// size limit is 512 KB; ack ids are a few hundred bytes).
const ACK_CHUNK: usize = 1000;
/// Answers to acknowledge/modifyAckDeadline are `{}`; bound them anyway.
const SMALL_ANSWER: usize = 64 * 1024;
/// Pub/Sub's largest pull batch.
pub const MAX_PULL: usize = 1000;

/// Where the bearer token lives: the directory (opened before confinement) and the
/// file name in it.
pub struct TokenFile {
    dir: File,
    name: String,
    shown: String,
}

impl TokenFile {
    /// Opens the directory of `path` (an absolute path, as configured).
    pub fn open(path: &str) -> Result<TokenFile, BusError> {
        let err = |source| BusError::Token {
            path: path.to_string(),
            source,
        };
        let p = std::path::Path::new(path);
        let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
            return Err(err(std::io::Error::other("not a file path")));
        };
        let dir = File::open(if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        })
        .map_err(err)?;
        Ok(TokenFile {
            dir,
            name: name.to_string(),
            shown: path.to_string(),
        })
    }

    /// The current token (the file's first line).
    fn read(&self) -> Result<String, BusError> {
        use nix::fcntl::{openat, OFlag};
        use nix::sys::stat::Mode;
        let err = |source| BusError::Token {
            path: self.shown.clone(),
            source,
        };
        let fd = openat(
            self.dir.as_fd(),
            self.name.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| err(e.into()))?;
        let mut text = String::new();
        File::from(fd)
            .take(MAX_TOKEN)
            .read_to_string(&mut text)
            .map_err(err)?;
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if token.is_empty() || !token.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(err(std::io::Error::other("no token on the first line")));
        }
        Ok(token)
    }
}

/// A Pub/Sub subscription.
pub struct PubSub {
    client: Client,
    /// `projects/P/subscriptions/S`.
    subscription: String,
    token: Option<TokenFile>,
    /// Largest pull answer accepted.
    max_answer: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PullRequest {
    max_messages: usize,
    return_immediately: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PullAnswer {
    #[serde(default)]
    received_messages: Vec<Received>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Received {
    #[serde(default)]
    ack_id: String,
    #[serde(default)]
    message: Message,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(default)]
    data: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    message_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AckRequest<'a> {
    ack_ids: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadlineRequest<'a> {
    ack_ids: &'a [String],
    ack_deadline_seconds: u64,
}

/// True for `projects/P/subscriptions/S` with names Pub/Sub allows.
pub fn valid_subscription(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 255
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b))
    };
    parts.len() == 4
        && parts[0] == "projects"
        && parts[2] == "subscriptions"
        && name_ok(parts[1])
        && name_ok(parts[3])
}

/// Parses a pull answer into bus messages. A received message without an ack id
/// cannot be acknowledged or refused and is left out (the count is returned).
pub fn parse_pull_answer(body: &[u8]) -> Result<(Vec<BusMessage>, usize), BusError> {
    let answer: PullAnswer =
        serde_json::from_slice(body).map_err(|e| BusError::Answer(e.to_string()))?;
    let mut unusable = 0;
    let mut out = Vec::with_capacity(answer.received_messages.len());
    for r in answer.received_messages {
        if r.ack_id.is_empty() {
            unusable += 1;
            continue;
        }
        out.push(BusMessage {
            id: r.message.message_id,
            ack_handle: r.ack_id,
            attributes: r.message.attributes,
            data_b64: r.message.data,
        });
    }
    Ok((out, unusable))
}

impl PubSub {
    pub fn new(
        client: Client,
        subscription: String,
        token: Option<TokenFile>,
        max_answer: usize,
    ) -> PubSub {
        PubSub {
            client,
            subscription,
            token,
            max_answer,
        }
    }

    /// `projects/P/subscriptions/S`, for log lines.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    fn call(&self, verb: &str, body: &[u8], max: usize) -> Result<Vec<u8>, BusError> {
        let token = self.token.as_ref().map(TokenFile::read).transpose()?;
        let path = format!("/v1/{}:{verb}", self.subscription);
        let (status, answer) = self.client.post_json(&path, body, token.as_deref(), max)?;
        if status != 200 {
            let text = String::from_utf8_lossy(&answer);
            return Err(BusError::Status {
                status,
                body: crate::submission::shown(text.trim()),
            });
        }
        Ok(answer)
    }

    fn deadline(&self, handles: &[String], seconds: u64) -> Result<(), BusError> {
        for chunk in handles.chunks(ACK_CHUNK) {
            let body = serde_json::to_vec(&DeadlineRequest {
                ack_ids: chunk,
                ack_deadline_seconds: seconds,
            })
            .map_err(|e| BusError::Answer(e.to_string()))?;
            self.call("modifyAckDeadline", &body, SMALL_ANSWER)?;
        }
        Ok(())
    }
}

impl Bus for PubSub {
    fn pull(&mut self, max: usize) -> Result<Vec<BusMessage>, BusError> {
        let body = serde_json::to_vec(&PullRequest {
            max_messages: max.clamp(1, MAX_PULL),
            // Not a long poll: a pull the server holds open until messages come must
            // be waited out to its end, or the server hands the next messages to a
            // connection nobody reads any more and they sit out a whole ack deadline
            // before redelivery (the emulator holds an empty pull open indefinitely,
            // so any client timeout does exactly that). An immediate answer, and the
            // caller's rostfix_bus_poll_interval after an empty one, cost an idle
            // request a second and never strand a message.
            return_immediately: true,
        })
        .map_err(|e| BusError::Answer(e.to_string()))?;
        let answer = self.call("pull", &body, self.max_answer)?;
        let (messages, unusable) = parse_pull_answer(&answer)?;
        if unusable > 0 {
            log::warn!("{unusable} pulled message(s) without an ackId ignored");
        }
        Ok(messages)
    }

    fn ack(&mut self, handles: &[String]) -> Result<(), BusError> {
        for chunk in handles.chunks(ACK_CHUNK) {
            let body = serde_json::to_vec(&AckRequest { ack_ids: chunk })
                .map_err(|e| BusError::Answer(e.to_string()))?;
            self.call("acknowledge", &body, SMALL_ANSWER)?;
        }
        Ok(())
    }

    fn extend(&mut self, handles: &[String], extra: Duration) -> Result<(), BusError> {
        // Pub/Sub's range is 0..=600 seconds.
        self.deadline(handles, extra.as_secs().clamp(10, 600))
    }

    fn nack(&mut self, handles: &[String]) -> Result<(), BusError> {
        self.deadline(handles, 0)
    }

    fn kind(&self) -> &'static str {
        "pubsub"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions() {
        assert!(valid_subscription("projects/p-1/subscriptions/mail.in"));
        for bad in [
            "",
            "projects/p/topics/t",
            "projects//subscriptions/s",
            "projects/p/subscriptions/s/x",
            "projects/p/subscriptions/a b",
        ] {
            assert!(!valid_subscription(bad), "{bad}");
        }
    }

    #[test]
    fn pull_answers() {
        let body = br#"{"receivedMessages":[
            {"ackId":"A1","message":{"data":"eA==","attributes":{"sender":"a@b"},"messageId":"7","publishTime":"2026-01-01T00:00:00Z"}},
            {"message":{"data":"","messageId":"8"}},
            {"ackId":"A3","message":{"messageId":"9"}}
        ]}"#;
        let (m, unusable) = parse_pull_answer(body).unwrap();
        assert_eq!(unusable, 1);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].id, "7");
        assert_eq!(m[0].ack_handle, "A1");
        assert_eq!(m[0].data_b64, "eA==");
        assert_eq!(
            m[0].attributes.get("sender").map(String::as_str),
            Some("a@b")
        );
        assert_eq!((m[1].id.as_str(), m[1].data_b64.as_str()), ("9", ""));
        assert!(parse_pull_answer(b"{}").unwrap().0.is_empty());
        assert!(parse_pull_answer(b"[").is_err());
    }

    #[test]
    fn request_shapes() {
        let ids = vec!["a".to_string()];
        assert_eq!(
            serde_json::to_string(&DeadlineRequest {
                ack_ids: &ids,
                ack_deadline_seconds: 0
            })
            .unwrap(),
            r#"{"ackIds":["a"],"ackDeadlineSeconds":0}"#
        );
        assert_eq!(
            serde_json::to_string(&PullRequest {
                max_messages: 5,
                return_immediately: true
            })
            .unwrap(),
            r#"{"maxMessages":5,"returnImmediately":true}"#
        );
    }
}
