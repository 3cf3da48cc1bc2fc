//! Header rewriting between consumer and upstream: hop-by-hop and credential stripping,
//! RFC 7239 `Forwarded`, `X-Request-Id` and W3C Trace Context `traceparent`.

use std::cell::Cell;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use http::header::{
    AUTHORIZATION, CONNECTION, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};

/// `X-Request-Id`: kept from the consumer when sane, else generated; echoed on responses.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-API-Key`: a consumer credential, never forwarded.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// W3C Trace Context.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// W3C Trace Context vendor state; only meaningful beside a valid `traceparent`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Longest incoming `X-Request-Id` the gateway keeps.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): those `Connection` names, then the
/// fixed set and every `Proxy-*`. Applied in both directions.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one scan of the names is cheaper than probing
    // the map for each.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(CONNECTION) {
        // Names are collected first because the map cannot be mutated while its
        // `Connection` values are borrowed; this allocates only when the header is sent.
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(CONNECTION);
    }
    for name in [KEEP_ALIVE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    strip_proxy_headers(headers);
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        CONNECTION,
        KEEP_ALIVE,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
    ]
    .contains(name)
        || name.as_str().starts_with("proxy-")
}

/// Removes every `Proxy-*` header. The well-known ones are removed by name; the scan for
/// others allocates only when one is present.
fn strip_proxy_headers(headers: &mut HeaderMap) {
    for name in [PROXY_AUTHORIZATION, PROXY_AUTHENTICATE, PROXY_CONNECTION] {
        headers.remove(name);
    }
    if headers.keys().any(|k| k.as_str().starts_with("proxy-")) {
        let others: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in others {
            headers.remove(name);
        }
    }
}

/// Removes the consumer's credentials: the upstream must never see them (it gets the
/// gateway's own assertion once that lands).
pub fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    headers.remove(X_API_KEY);
    // A signed request's signature is the consumer's credential too (its
    // `Content-Digest` stays: it describes the body).
    headers.remove("signature");
    headers.remove("signature-input");
}

/// The RFC 7239 element `for=…;proto=http(s);host=…` this gateway adds to the request's
/// `Forwarded` list (appended as a new field line, so elements set by proxies in front
/// of the gateway are kept). `host` is the `Host` the consumer sent, port included;
/// `tls` whether the consumer's connection was TLS.
pub fn forwarded_element(peer: IpAddr, host: Option<&str>, tls: bool) -> Option<HeaderValue> {
    let mut value = String::with_capacity(64);
    value.push_str("for=");
    match peer {
        // IPv6 nodes must be quoted and bracketed (RFC 7239 §6).
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => push_ipv4(&mut value, v4),
            None => {
                let _ = write!(value, "\"[{v6}]\"");
            }
        },
        IpAddr::V4(v4) => push_ipv4(&mut value, v4),
    }
    value.push_str(if tls { ";proto=https" } else { ";proto=http" });
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        value.push_str(";host=");
        push_token_or_quoted(&mut value, host);
    }
    HeaderValue::from_maybe_shared(Bytes::from(value)).ok()
}

/// Writes dotted-quad IPv4 without `fmt`, which is most of this header's cost.
fn push_ipv4(out: &mut String, ip: Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

/// A `Forwarded` value is a token or a quoted-string; a host with a port (`:`) is not a
/// token.
fn push_token_or_quoted(out: &mut String, value: &str) {
    if value.bytes().all(is_tchar) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The request id: the consumer's `X-Request-Id` when it is a sane token of at most 128
/// characters (so it can be quoted in logs and problem bodies as is), else a new UUIDv7.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(X_REQUEST_ID)
        && is_sane_request_id(v.as_bytes())
    {
        return v.clone();
    }
    new_request_id()
}

fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

/// A fresh UUIDv7 request id.
///
/// `Uuid::now_v7` is not used because it takes a process-wide mutex and a `getrandom`
/// call per id; the random bits come from a per-thread generator instead. Request ids
/// must be unique, not secret.
pub fn new_request_id() -> HeaderValue {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&next_u64().to_le_bytes());
    random[8..].copy_from_slice(&next_u64().to_le_bytes()[..2]);
    let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A parsed, valid `traceparent`: the parts the gateway propagates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// 16-byte trace id, never all zeros.
    pub trace_id: [u8; 16],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

/// Flags of a trace the gateway starts: not sampled, because the gateway does not
/// export spans yet and a sampled trace without its root span misleads.
const NEW_TRACE_FLAGS: u8 = 0;

impl TraceParent {
    /// Parses a `traceparent` value strictly (W3C Trace Context level 1 §3.2): lowercase
    /// hex, version `00` exactly 55 bytes, a higher version at least 55 bytes with a `-`
    /// after the flags, version `ff` invalid, trace id and parent id not all zeros.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() < 55 {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        match version {
            0xff => return None,
            0x00 if value.len() != 55 => return None,
            0x00 => {}
            _ if value.len() > 55 && value[55] != b'-' => return None,
            _ => {}
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0u8; 8];
        for (i, byte) in parent_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&value[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, flags })
    }

    /// A new trace with a random id.
    pub fn new_trace() -> Self {
        loop {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&next_u64().to_le_bytes());
            trace_id[8..].copy_from_slice(&next_u64().to_le_bytes());
            if trace_id != [0; 16] {
                return Self {
                    trace_id,
                    flags: NEW_TRACE_FLAGS,
                };
            }
        }
    }

    /// The `traceparent` for the upstream request: this trace, a new parent (span) id
    /// standing for the gateway's hop, always version `00` (the version we speak).
    pub fn child_header(&self) -> HeaderValue {
        let span_id = loop {
            let id = next_u64();
            if id != 0 {
                break id.to_be_bytes();
            }
        };
        let mut out = [0u8; 55];
        out[..3].copy_from_slice(b"00-");
        write_hex(&mut out[3..35], &self.trace_id);
        out[35] = b'-';
        write_hex(&mut out[36..52], &span_id);
        out[52] = b'-';
        write_hex(&mut out[53..55], &[self.flags]);
        HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        let mut out = [0u8; 32];
        write_hex(&mut out, &self.trace_id);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Sets the upstream's `traceparent`: a child of a valid incoming one, else a new trace.
/// `tracestate` is kept only beside a valid incoming `traceparent`, as the spec requires.
pub fn propagate_trace(headers: &mut HeaderMap) -> TraceParent {
    let incoming = headers
        .get(TRACEPARENT)
        .and_then(|v| TraceParent::parse(v.as_bytes()));
    let trace = match incoming {
        Some(t) => t,
        None => {
            headers.remove(TRACESTATE);
            TraceParent::new_trace()
        }
    };
    headers.insert(TRACEPARENT, trace.child_header());
    trace
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    Some(nibble(two[0])? << 4 | nibble(two[1])?)
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

thread_local! {
    static RNG_STATE: Cell<u64> = Cell::new(seed());
}

/// Seeds each thread's generator from the OS once (through uuid's `getrandom`).
fn seed() -> u64 {
    let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
    a ^ b.rotate_left(32)
}

/// wyrand: a fast, statistically good, non-cryptographic generator. Ids need to be
/// unique, not unpredictable.
fn next_u64() -> u64 {
    RNG_STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::FORWARDED;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut v: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "close, X-Custom-Hop"),
            ("connection", "x-other"),
            ("x-custom-hop", "1"),
            ("x-other", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("proxy-foo", "x"),
            ("accept", "*/*"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["accept", "x-kept"]);
    }

    #[test]
    fn strips_credentials_only() {
        let mut h = map(&[
            ("authorization", "Bearer x"),
            ("x-api-key", "k"),
            ("cookie", "a=b"),
        ]);
        strip_credentials(&mut h);
        assert_eq!(names(&h), ["cookie"]);
    }

    #[test]
    fn forwarded_appends_and_quotes() {
        let check = |peer: &str, host: Option<&str>, expected: &str| {
            let mut h = map(&[("forwarded", "for=192.0.2.60;proto=https")]);
            h.append(
                FORWARDED,
                forwarded_element(peer.parse().unwrap(), host, false).unwrap(),
            );
            let all: Vec<_> = h
                .get_all(FORWARDED)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(all, ["for=192.0.2.60;proto=https", expected]);
        };
        check(
            "10.0.0.1",
            Some("api.example.com"),
            "for=10.0.0.1;proto=http;host=api.example.com",
        );
        check(
            "10.0.0.1",
            Some("api.example.com:8080"),
            "for=10.0.0.1;proto=http;host=\"api.example.com:8080\"",
        );
        check("2001:db8::1", None, "for=\"[2001:db8::1]\";proto=http");
        check("::ffff:10.0.0.2", Some(""), "for=10.0.0.2;proto=http");
        check("0.9.10.255", None, "for=0.9.10.255;proto=http");
        check("100.200.99.1", None, "for=100.200.99.1;proto=http");
    }

    #[test]
    fn request_id_kept_when_sane() {
        let check = |incoming: Option<&str>, kept: bool| {
            let h = incoming.map_or_else(HeaderMap::new, |v| map(&[("x-request-id", v)]));
            let id = request_id(&h);
            assert_eq!(incoming == Some(id.to_str().unwrap()), kept, "{incoming:?}");
            if !kept {
                let parsed = uuid::Uuid::parse_str(id.to_str().unwrap()).unwrap();
                assert_eq!(parsed.get_version_num(), 7);
            }
        };
        check(Some("abc-123_XYZ.9:+/=@"), true);
        check(Some(&"a".repeat(128)), true);
        check(Some(&"a".repeat(129)), false);
        check(Some("has space"), false);
        check(Some("quote\"d"), false);
        check(Some(""), false);
        check(None, false);
    }

    #[test]
    fn generated_request_ids_differ() {
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn traceparent_parsing_is_strict() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let check = |v: &str, ok: bool| {
            assert_eq!(TraceParent::parse(v.as_bytes()).is_some(), ok, "{v}");
        };
        check(valid, true);
        check(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            true,
        );
        check(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            true,
        );
        check(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            true,
        );
        check(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            false,
        );
        check(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            false,
        );
        check(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            false,
        );
        check(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            false,
        );
        check(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            false,
        );
        check(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            false,
        );
        check(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            false,
        );
        check(
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            false,
        );
        check(
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            false,
        );
        check(
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            false,
        );
        check("", false);
    }

    #[test]
    fn trace_is_propagated_with_a_new_parent() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = map(&[
            ("traceparent", incoming),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]);
        let t = propagate_trace(&mut h);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let out = h[TRACEPARENT].to_str().unwrap();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(out.ends_with("-01"));
        assert_ne!(out, incoming, "the parent id is the gateway's own");
        assert!(TraceParent::parse(out.as_bytes()).is_some());
        assert_eq!(h[TRACESTATE], "congo=t61rcWkgMzE");
    }

    #[test]
    fn invalid_trace_starts_a_new_one_and_drops_tracestate() {
        let mut h = map(&[
            ("traceparent", "garbage"),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]);
        let t = propagate_trace(&mut h);
        let out = h[TRACEPARENT].to_str().unwrap();
        assert!(TraceParent::parse(out.as_bytes()).is_some());
        assert!(out.starts_with(&format!("00-{}-", t.trace_id_hex())));
        assert!(out.ends_with("-00"));
        assert!(!h.contains_key(TRACESTATE));
    }
}
