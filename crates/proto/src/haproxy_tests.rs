//! Unit and property tests of the PROXY header parser (haproxy.rs).

use super::*;
use proptest::prelude::*;

fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn v4_body() -> Vec<u8> {
    let mut b = vec![127, 0, 0, 2, 127, 0, 0, 1];
    b.extend_from_slice(&40000u16.to_be_bytes());
    b.extend_from_slice(&25u16.to_be_bytes());
    b
}

#[test]
fn v1_tcp4() {
    let buf = b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 25\r\nEHLO x\r\n";
    let p = parse(buf).unwrap();
    assert_eq!(p.len, 44);
    assert_eq!(
        p.endpoints,
        Some((
            "192.0.2.7:51234".parse().unwrap(),
            "198.51.100.1:25".parse().unwrap()
        ))
    );
}

#[test]
fn v1_tcp6() {
    let p = parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 587\r\n").unwrap();
    let (c, s) = p.endpoints.unwrap();
    assert_eq!(c, "[2001:db8::7]:1".parse().unwrap());
    assert_eq!(s.port(), 587);
}

#[test]
fn v1_refusals_use_postfix_texts() {
    let cases: &[(&[u8], ProxyError)] = &[
        (b"PROXY UNKNOWN\r\n", ProxyError::V1Type),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 25",
            ProxyError::NoTerminator,
        ),
        (
            b"PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n",
            ProxyError::ClientAddr,
        ),
        (
            b"PROXY TCP6 2001:db8::1 198.51.100.1 1 25\r\n",
            ProxyError::ServerAddr,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",
            ProxyError::ClientPort,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 -5\r\n",
            ProxyError::ServerPort,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
            ProxyError::ServerPort,
        ),
    ];
    for (buf, want) in cases {
        assert_eq!(parse(buf), Err(*want), "{}", String::from_utf8_lossy(buf));
    }
    assert_eq!(
        ProxyError::ClientAddr.to_string(),
        "bad or missing client address"
    );
}

#[test]
fn v2_proxy_and_local() {
    let mut buf = v2(1, 0x11, &v4_body());
    buf.extend_from_slice(b"EHLO x\r\n");
    let p = parse(&buf).unwrap();
    assert_eq!(p.len, 28);
    let (c, s) = p.endpoints.unwrap();
    assert_eq!(c, "127.0.0.2:40000".parse().unwrap());
    assert_eq!(s, "127.0.0.1:25".parse().unwrap());
    // TLVs after the addresses are skipped but counted in the length.
    let mut body = v4_body();
    body.extend_from_slice(&[0x04, 0x00, 0x01, 0xff]);
    assert_eq!(parse(&v2(1, 0x11, &body)).unwrap().len, 32);
    let local = parse(&v2(0, 0x00, &[])).unwrap();
    assert_eq!(local.endpoints, None);
    let mut b6 = vec![0u8; 36];
    b6[15] = 1;
    b6[31] = 2;
    let (c, _) = parse(&v2(1, 0x21, &b6)).unwrap().endpoints.unwrap();
    assert_eq!(c.ip(), "::1".parse::<IpAddr>().unwrap());
}

#[test]
fn v2_refusals() {
    assert_eq!(parse(b"EHLO client\r\n"), Err(ProxyError::Unrecognized));
    assert_eq!(parse(&V2_SIGNATURE[..10]), Err(ProxyError::Short));
    let mut bad_version = v2(1, 0x11, &v4_body());
    bad_version[12] = 0x11;
    assert_eq!(parse(&bad_version), Err(ProxyError::Version));
    let whole = v2(1, 0x11, &v4_body());
    assert_eq!(parse(&whole[..20]), Err(ProxyError::ShortV2));
    assert_eq!(parse(&v2(1, 0x11, &[1, 2])), Err(ProxyError::ShortAddress));
    assert_eq!(parse(&v2(1, 0x12, &v4_body())), Err(ProxyError::Network));
    assert_eq!(parse(&v2(1, 0x31, &v4_body())), Err(ProxyError::Network));
    assert_eq!(parse(&v2(2, 0x11, &v4_body())), Err(ProxyError::Command));
}

#[test]
fn collect_stops_at_the_header() {
    let mut buf = v2(1, 0x11, &v4_body());
    let len = buf.len();
    buf.extend_from_slice(b"EHLO x\r\n");
    let mut r = &buf[..];
    assert_eq!(collect(&mut r).unwrap().len(), len);
    assert_eq!(r, b"EHLO x\r\n");
    let mut r: &[u8] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nQUIT\r\n";
    assert_eq!(collect(&mut r).unwrap().len(), 32);
    assert_eq!(r, b"QUIT\r\n");
    // Not a header at all: six bytes are read, then parse refuses them.
    let mut r: &[u8] = b"EHLO client\r\n";
    assert_eq!(
        parse(&collect(&mut r).unwrap()),
        Err(ProxyError::Unrecognized)
    );
}

#[test]
fn the_longest_v1_line_fits_and_one_more_byte_does_not() {
    let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY TCP6 {a} {a} 65535 65535\r\n");
    assert!(line.len() <= MAX_V1);
    let mut r = line.as_bytes();
    assert_eq!(parse(&collect(&mut r).unwrap()).unwrap().len, line.len());
    // Padding inside the line past 107 bytes: refused after reading MAX_V1 bytes.
    let padded = format!("PROXY TCP6 {a}{} {a} 65535 65535\r\n", " ".repeat(10));
    let mut r = padded.as_bytes();
    let got = collect(&mut r).unwrap();
    assert_eq!(got.len(), MAX_V1);
    assert_eq!(parse(&got), Err(ProxyError::NoTerminator));
}

#[test]
fn collect_is_bounded() {
    let mut long = b"PROXY ".to_vec();
    long.extend(std::iter::repeat_n(b'A', 10_000));
    let mut r = &long[..];
    let got = collect(&mut r).unwrap();
    assert_eq!(got.len(), MAX_V1);
    assert_eq!(parse(&got), Err(ProxyError::NoTerminator));
    // A v2 length of 65535 reads no more than MAX_HEADER bytes.
    let mut huge = V2_SIGNATURE.to_vec();
    huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    huge.extend(std::iter::repeat_n(0u8, 70_000));
    let mut r = &huge[..];
    let got = collect(&mut r).unwrap();
    assert_eq!(got.len(), MAX_HEADER);
    assert_eq!(parse(&got), Err(ProxyError::ShortV2));
}

#[test]
fn escape_like_postfix() {
    assert_eq!(escape(b"A\r\n\x00\\"), "A\\r\\n\\000\\\\");
}

proptest! {
    /// Whatever arrives, parsing never panics, never claims more bytes than it was
    /// given, and a collected header never exceeds MAX_HEADER.
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(p) = parse(&bytes) {
            prop_assert!(p.len <= bytes.len());
        }
        let mut r = &bytes[..];
        if let Ok(got) = collect(&mut r) {
            prop_assert!(got.len() <= MAX_HEADER);
        }
    }

    /// Every v1 TCP4 header round-trips to the endpoints written.
    #[test]
    fn v1_round_trip(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), p in any::<u16>(), q in any::<u16>()) {
        let (c, s) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
        let text = format!("PROXY TCP4 {c} {s} {p} {q}\r\n");
        let got = parse(text.as_bytes()).unwrap();
        prop_assert_eq!(got.len, text.len());
        prop_assert_eq!(got.endpoints, Some((SocketAddr::new(c.into(), p), SocketAddr::new(s.into(), q))));
    }

    /// Any v2 PROXY header with an IPv4 body and arbitrary TLVs parses to its length.
    #[test]
    fn v2_round_trip(body in any::<[u8; 12]>(), tlv in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut all = body.to_vec();
        all.extend_from_slice(&tlv);
        let h = v2(1, 0x11, &all);
        let got = parse(&h).unwrap();
        prop_assert_eq!(got.len, h.len());
        let mut r = &h[..];
        prop_assert_eq!(collect(&mut r).unwrap(), h);
    }
}
