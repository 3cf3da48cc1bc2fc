//! Sandbox answers from an OpenAPI document: when a test key calls an API that has no
//! sandbox upstream, the gateway answers with the response the document describes.
//!
//! [`MockTable::build`] resolves everything once per document (the gateway builds it with
//! its snapshot): every operation's declared responses with their `$ref`s to components
//! (responses, headers, examples, schemas) followed, every media type's body encoded,
//! every named example encoded, header values rendered. [`MockTable::respond`] then only
//! chooses, per request:
//!
//! - **the response**: the one `Prefer: code=NNN` names if the operation declares it
//!   (exactly, through its range such as `4XX`, or through `default`, which then answers
//!   with NNN); else the lowest declared 2xx, then `2XX` (as 200), then `default` (as 200,
//!   like Prism); else the lowest declared status;
//! - **the media type**, by `Accept` (exact, `type/*`, `*/*`, q-values with `q=0`
//!   excluding; see `negotiate.rs`), preferring `application/json`, then other JSON types,
//!   then document order. A declared range (`*/*`, as springdoc writes, or `text/*`) is
//!   answered as `application/json` or `text/plain` (`application/octet-stream` for other
//!   ranges);
//! - **the body**: the example `Prefer: example=name` names, else the media type's
//!   `example`, else its first `examples` entry with a `value` (`externalValue` is never
//!   fetched), else an example synthesized from the schema (see `synth.rs`; it honours the
//!   schema's own `example`/`examples` first). JSON types are written as compact JSON;
//!   for other types a string example is written as-is.
//!
//! Response headers come from the response's `headers` (`example`, first `examples` entry,
//! or the schema), rendered in the `simple` style. `Content-Type` is ignored as OpenAPI
//! says, and framing headers (`Content-Length`, `Transfer-Encoding`, `Connection`, …) are
//! dropped so a document cannot corrupt the gateway's framing. Values with control
//! characters are dropped.
//!
//! Size and work are bounded: a body over [`MAX_BODY_BYTES`] is not served
//! ([`MockError::TooLarge`]), and once a table holds [`MAX_TABLE_BYTES`] of bodies or its
//! syntheses have visited [`MAX_TABLE_FUEL`] schema nodes, later bodies are refused the
//! same way (operations are built in document order, so which ones is deterministic).
//! Responses, bodies and schemas reached through the same `$ref` are built once and
//! shared.

mod compile;
mod negotiate;
mod synth;

use negotiate::MediaType;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use synth::{FUEL, MAX_DEPTH};

/// The largest body a mock answer carries.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most bytes of bodies and header values one [`MockTable`] holds.
pub const MAX_TABLE_BYTES: usize = 64 << 20;

/// The most schema nodes all syntheses of one [`MockTable`] visit together (each one at
/// most [`FUEL`]), so a hostile document cannot make building a snapshot slow.
pub const MAX_TABLE_FUEL: usize = 400 * FUEL;

/// A mock answer. The parts are shared with the [`MockTable`], so producing one copies no
/// body; `body` can become a `bytes::Bytes` without a copy through `Bytes::from_owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockResponse {
    /// The declared status, or the one `Prefer: code=` asked for when it matched a range
    /// or `default`.
    pub status: u16,
    /// Response headers declared by the document, names as written, in document order.
    pub headers: Arc<[(String, String)]>,
    /// `None` when the response declares no content (the body is then empty).
    pub content_type: Option<Arc<str>>,
    /// The encoded example: compact JSON for JSON media types.
    pub body: Arc<[u8]>,
}

/// Why no mock answer can be given. The gateway renders these as problems; every variant
/// but `NotAcceptable` (406) means the document cannot serve the sandbox call (501).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockError {
    #[error("operation {operation_id:?} is not in the API's OpenAPI document")]
    UnknownOperation { operation_id: String },
    #[error("operation {operation_id:?} declares no response that can be mocked")]
    NoResponse { operation_id: String },
    #[error(
        "none of the media types of the {status} response of operation {operation_id:?} is \
         acceptable; it offers {}",
        .offered.join(", ")
    )]
    NotAcceptable {
        operation_id: String,
        status: u16,
        offered: Vec<String>,
    },
    #[error(
        "the example for operation {operation_id:?} is over the sandbox's limits \
         ({MAX_BODY_BYTES} bytes per body; {MAX_TABLE_BYTES} bytes and {MAX_TABLE_FUEL} \
         schema nodes per API)"
    )]
    TooLarge { operation_id: String },
}

/// Every operation's mock answers, resolved from one document.
#[derive(Clone, Default)]
pub struct MockTable {
    /// By operationId, as [`crate::import`] lists them (derived ids included).
    operations: HashMap<String, Operation>,
    empty: Arc<[u8]>,
}

impl fmt::Debug for MockTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockTable")
            .field("operations", &self.operations.len())
            .finish_non_exhaustive()
    }
}

impl MockTable {
    /// Resolves the mock answers of every operation of `doc` (an OpenAPI 3.0 or 3.1
    /// document, normally one [`crate::import`] accepted). Never fails: what cannot be
    /// resolved (remote or broken `$ref`s, malformed entries) is left out, and an
    /// operation left with no response answers [`MockError::NoResponse`].
    pub fn build(doc: &Value) -> MockTable {
        compile::build(doc, None, compile::Limits::TABLE)
    }

    /// The mock answer for a call of `operation_id` with these `Accept` and `Prefer`
    /// header values (several field lines joined with `, `). Allocates only for errors
    /// and to unescape a quoted example name.
    pub fn respond(
        &self,
        operation_id: &str,
        accept: Option<&str>,
        prefer: Option<&str>,
    ) -> Result<MockResponse, MockError> {
        let Some(operation) = self.operations.get(operation_id) else {
            return Err(MockError::UnknownOperation {
                operation_id: operation_id.to_owned(),
            });
        };
        let preferences = prefer.map(negotiate::preferences).unwrap_or_default();
        let Some((status, response)) = operation.select(preferences.code) else {
            return Err(MockError::NoResponse {
                operation_id: operation_id.to_owned(),
            });
        };
        if response.content.is_empty() {
            return Ok(MockResponse {
                status,
                headers: response.headers.clone(),
                content_type: None,
                body: self.empty.clone(),
            });
        }
        let Some(media) = negotiate::choose(&response.content, |m| &m.media_type, accept) else {
            return Err(MockError::NotAcceptable {
                operation_id: operation_id.to_owned(),
                status,
                offered: response
                    .content
                    .iter()
                    .map(|m| m.content_type.to_string())
                    .collect(),
            });
        };
        let named = preferences
            .example
            .as_deref()
            .and_then(|name| media.named.iter().find(|(n, _)| n == name));
        let body = named.map_or(&media.body, |(_, body)| body);
        let Body::Ready(body) = body else {
            return Err(MockError::TooLarge {
                operation_id: operation_id.to_owned(),
            });
        };
        Ok(MockResponse {
            status,
            headers: response.headers.clone(),
            content_type: Some(media.content_type.clone()),
            body: body.clone(),
        })
    }

    /// Whether `operation_id` is an operation of the document.
    pub fn contains(&self, operation_id: &str) -> bool {
        self.operations.contains_key(operation_id)
    }

    /// How many operations the table holds.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

/// One-off answer without keeping a table: resolves only `operation_id` of `doc`. The
/// gateway should build a [`MockTable`] once instead.
pub fn respond(
    doc: &Value,
    operation_id: &str,
    accept: Option<&str>,
    prefer: Option<&str>,
) -> Result<MockResponse, MockError> {
    compile::build(doc, Some(operation_id), compile::Limits::TABLE).respond(
        operation_id,
        accept,
        prefer,
    )
}

#[derive(Clone)]
struct Operation {
    /// Declared responses in document order.
    responses: Vec<(StatusKey, Arc<Response>)>,
}

impl Operation {
    /// The response to answer with and its status; see the module docs for the order.
    fn select(&self, preferred: Option<u16>) -> Option<(u16, &Arc<Response>)> {
        let find = |key: StatusKey| {
            self.responses
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, r)| r)
        };
        if let Some(code) = preferred {
            let declared = find(StatusKey::Code(code))
                .or_else(|| find(StatusKey::Range(code / 100)))
                .or_else(|| find(StatusKey::Default));
            if let Some(response) = declared {
                return Some((code, response));
            }
        }
        let lowest_2xx = self
            .responses
            .iter()
            .filter_map(|(k, r)| match k {
                StatusKey::Code(code) if (200..300).contains(code) => Some((*code, r)),
                _ => None,
            })
            .min_by_key(|(code, _)| *code);
        if let Some(found) = lowest_2xx {
            return Some(found);
        }
        if let Some(response) = find(StatusKey::Range(2)).or_else(|| find(StatusKey::Default)) {
            return Some((200, response));
        }
        self.responses
            .iter()
            .filter_map(|(k, r)| match k {
                StatusKey::Code(code) => Some(((*code, false), r)),
                StatusKey::Range(class) => Some(((class * 100, true), r)),
                StatusKey::Default => None,
            })
            .min_by_key(|(key, _)| *key)
            .map(|((code, _), r)| (code, r))
    }
}

/// A key of a Responses object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusKey {
    /// `"404"`.
    Code(u16),
    /// `"4XX"`: the class digit.
    Range(u16),
    Default,
}

impl StatusKey {
    /// `None` for keys that are not statuses (extensions such as `x-foo`, typos).
    fn parse(key: &str) -> Option<StatusKey> {
        if key == "default" {
            return Some(StatusKey::Default);
        }
        if let Some(code) = negotiate::parse_status(key) {
            return Some(StatusKey::Code(code));
        }
        match key.as_bytes() {
            [class @ b'1'..=b'5', x, y]
                if x.eq_ignore_ascii_case(&b'x') && y.eq_ignore_ascii_case(&b'x') =>
            {
                Some(StatusKey::Range(u16::from(class - b'0')))
            }
            _ => None,
        }
    }
}

/// A resolved Response object; shared by every operation that refers to it.
struct Response {
    headers: Arc<[(String, String)]>,
    /// Media types in document order; empty when the response has no body.
    content: Vec<Media>,
}

struct Media {
    /// What `Accept` is matched against: the declared type, or the concrete type a
    /// declared range is answered as.
    media_type: MediaType,
    /// The `Content-Type` sent: the declared key as written, or the concrete type.
    content_type: Arc<str>,
    /// The body when no (known) example is asked for.
    body: Body,
    /// Named examples, for `Prefer: example=name`.
    named: Vec<(String, Body)>,
}

#[derive(Clone)]
enum Body {
    Ready(Arc<[u8]>),
    /// Over [`MAX_BODY_BYTES`], or past the table's [`MAX_TABLE_BYTES`].
    TooLarge,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keys() {
        for (key, expected) in [
            ("200", Some(StatusKey::Code(200))),
            ("599", Some(StatusKey::Code(599))),
            ("4XX", Some(StatusKey::Range(4))),
            ("2xx", Some(StatusKey::Range(2))),
            ("default", Some(StatusKey::Default)),
            ("600", None),
            ("6XX", None),
            ("20", None),
            ("x-extension", None),
            ("Default", None),
        ] {
            assert_eq!(StatusKey::parse(key), expected, "{key}");
        }
    }

    fn operation(keys: &[&str]) -> Operation {
        let response = Arc::new(Response {
            headers: Arc::from([]),
            content: Vec::new(),
        });
        Operation {
            responses: keys
                .iter()
                .map(|k| (StatusKey::parse(k).unwrap(), response.clone()))
                .collect(),
        }
    }

    /// The status `select` answers with for these declared keys and preferred code.
    fn check(keys: &[&str], preferred: Option<u16>, expected: Option<u16>) {
        let got = operation(keys).select(preferred).map(|(status, _)| status);
        assert_eq!(got, expected, "{keys:?} preferring {preferred:?}");
    }

    #[test]
    fn response_selection() {
        check(&["404", "201", "200", "default"], None, Some(200));
        check(&["404", "2XX", "default"], None, Some(200));
        check(&["404", "default"], None, Some(200));
        check(&["500", "404", "4XX"], None, Some(400));
        check(&["500", "404"], None, Some(404));
        check(&["5XX", "404"], None, Some(404));
        check(&["5XX", "4XX"], None, Some(400));
        check(&["400", "4XX"], None, Some(400));
        check(&[], None, None);
        check(&["200", "404"], Some(404), Some(404));
        check(&["200", "4XX"], Some(418), Some(418));
        check(&["200", "default"], Some(503), Some(503));
        check(&["200", "404"], Some(500), Some(200));
        check(&[], Some(500), None);
    }
}
