//! The property the fuzz target `milter_replies` checks (fuzz/fuzz_targets): what a
//! milter sends is network input, so for any bytes read as a stream of reply packets
//! the reader never returns a packet over MAX_PACKET nor panics, the decoder never
//! panics, and every decoded modification applied to a message (with and without
//! HDR_LEADSPC, chosen by the first byte) leaves a message that renders and parses
//! again into the same header fields: nothing a milter sends can add a field of its
//! own making or end the header section early. The fuzz corpus is replayed by `cargo test`
//! (crates/milter/tests/fuzz_corpus.rs).

use crate::codec::{read_packet, Response, MAX_PACKET};
use crate::message::{EnvelopeEdits, Message};

/// Fuzz target `milter_replies`.
pub fn replies(data: &[u8]) {
    let leadspc = data.first().is_some_and(|b| b & 1 == 1);
    let mut input = data.get(1..).unwrap_or(&[]);
    let mut msg = Message::parse(b"Received: from x\n\tby y\nSubject: s\nX-A: 1\n\nbody\n");
    let mut env = EnvelopeEdits::default();
    let mut body = None;
    while let Ok((code, payload)) = read_packet(&mut input) {
        assert!(payload.len() < MAX_PACKET);
        if let Ok(reply) = Response::decode(code, &payload) {
            msg.apply(reply, &mut env, &mut body, leadspc);
        }
    }
    if let Some(b) = body {
        msg.replace_body(&b);
    }
    let again = Message::parse(&msg.render());
    assert_eq!(again.headers, msg.headers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;
    use proptest::prelude::*;

    proptest! {
        /// Header modifications with names and values from anywhere (line breaks,
        /// colons, spaces, empty lines) keep the property.
        #[test]
        fn arbitrary_header_edits_keep_the_header_section(
            leadspc in any::<bool>(),
            edits in proptest::collection::vec(
                (0u8..3, 0u32..4, "[ -~\r\n\t]{0,12}", "[ -~\r\n\t]{0,24}"), 0..6),
        ) {
            let mut data = vec![u8::from(leadspc)];
            for (kind, index, name, value) in edits {
                let mut d = Vec::new();
                if kind > 0 {
                    d.extend_from_slice(&index.to_be_bytes());
                }
                d.extend_from_slice(name.as_bytes());
                d.push(0);
                d.extend_from_slice(value.as_bytes());
                d.push(0);
                data.extend(encode([b'h', b'i', b'm'][usize::from(kind)], &d));
            }
            replies(&data);
        }
    }
}
