//! A read-only view of an HTTP message (request or response) and the component values
//! RFC 9421 §2 derives from it, written straight into the signature base.

use http::{HeaderMap, Method, StatusCode, Uri, Version};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::Error;
use crate::component::{ComponentId, ComponentParam, Derived};

/// The WHATWG `application/x-www-form-urlencoded` percent-encode set: everything but
/// ASCII alphanumerics and `*-._` (RFC 9421 §2.2.8 re-encodes query parameters with it,
/// spaces as `%20`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

#[derive(Debug, Clone, Copy)]
enum Head<'a> {
    Request {
        method: &'a Method,
        uri: &'a Uri,
        version: Version,
    },
    Response {
        status: StatusCode,
    },
}

/// The parts of an HTTP message a signature can cover: control data, header fields,
/// the authority and scheme the receiver saw, and, when at hand, the body.
///
/// Cheap to build (references only) and `Copy`.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    head: Head<'a>,
    headers: &'a HeaderMap,
    authority: Option<&'a str>,
    scheme: &'a str,
    body: Option<&'a [u8]>,
    request: Option<&'a Message<'a>>,
}

impl<'a> Message<'a> {
    /// A request. The authority is the URI's (HTTP/2, absolute-form) or else the `Host`
    /// field; the scheme is the URI's or else `https` — set both with
    /// [`with_authority`](Self::with_authority) and [`with_scheme`](Self::with_scheme)
    /// when the receiver knows better (a TLS listener, a trusted front proxy).
    pub fn request(parts: &'a http::request::Parts) -> Self {
        Self::request_from(&parts.method, &parts.uri, parts.version, &parts.headers)
    }

    /// A request, from an `http::Request` whose body is not read.
    pub fn from_request<B>(req: &'a http::Request<B>) -> Self {
        Self::request_from(req.method(), req.uri(), req.version(), req.headers())
    }

    fn request_from(
        method: &'a Method,
        uri: &'a Uri,
        version: Version,
        headers: &'a HeaderMap,
    ) -> Self {
        let authority = uri.authority().map(|a| a.as_str()).or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        });
        Message {
            head: Head::Request {
                method,
                uri,
                version,
            },
            headers,
            authority,
            scheme: uri.scheme_str().unwrap_or("https"),
            body: None,
            request: None,
        }
    }

    /// A response; add the request it answers with [`with_request`](Self::with_request)
    /// to resolve `;req` components.
    pub fn response(parts: &'a http::response::Parts) -> Self {
        Self::response_from(parts.status, &parts.headers)
    }

    /// A response, from an `http::Response` whose body is not read.
    pub fn from_response<B>(res: &'a http::Response<B>) -> Self {
        Self::response_from(res.status(), res.headers())
    }

    fn response_from(status: StatusCode, headers: &'a HeaderMap) -> Self {
        Message {
            head: Head::Response { status },
            headers,
            authority: None,
            scheme: "https",
            body: None,
            request: None,
        }
    }

    /// The authority the request was sent to (host and optional port).
    pub fn with_authority(mut self, authority: &'a str) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The scheme the request was received over (`https` or `http`).
    pub fn with_scheme(mut self, scheme: &'a str) -> Self {
        self.scheme = scheme;
        self
    }

    /// The body, so a covered `content-digest` is checked against it.
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }

    /// For a response: the request that triggered it (`;req` components).
    pub fn with_request(mut self, request: &'a Message<'a>) -> Self {
        self.request = Some(request);
        self
    }

    /// The header fields.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The body, if the view was given one.
    pub fn body(&self) -> Option<&'a [u8]> {
        self.body
    }

    /// Whether the message has content: body bytes when given, else a non-zero
    /// `Content-Length` or any `Transfer-Encoding`.
    pub fn has_body(&self) -> bool {
        if let Some(body) = self.body {
            return !body.is_empty();
        }
        if self.headers.contains_key(http::header::TRANSFER_ENCODING) {
            return true;
        }
        self.headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    }

    /// Appends the component value of `id` (RFC 9421 §2.1–2.2) to `out`.
    pub(crate) fn write_value(&self, id: &ComponentId<'_>, out: &mut String) -> Result<(), Error> {
        if id.has(&ComponentParam::Tr) {
            return Err(id.unsupported("trailers are not available to the verifier"));
        }
        let target = if id.has(&ComponentParam::Req) {
            match (self.head, self.request) {
                (Head::Response { .. }, Some(req)) => req,
                (Head::Response { .. }, None) => {
                    return Err(id.absent("the related request is not available"));
                }
                (Head::Request { .. }, _) => {
                    return Err(id.unsupported("req applies only to responses"));
                }
            }
        } else {
            self
        };
        match id.derived() {
            Some(d) => target.write_derived(d, id, out),
            None if id.is_derived() => Err(id.unsupported("unknown derived component")),
            None => target.write_field(id, out),
        }
    }

    fn write_derived(
        &self,
        d: Derived,
        id: &ComponentId<'_>,
        out: &mut String,
    ) -> Result<(), Error> {
        let (method, uri, version) = match (self.head, d) {
            (Head::Response { status }, Derived::Status) => {
                out.push_str(status.as_str());
                return Ok(());
            }
            (Head::Response { .. }, _) => {
                return Err(id.absent("a request component of a response needs ;req"));
            }
            (Head::Request { .. }, Derived::Status) => {
                return Err(id.absent("@status is a response component"));
            }
            (
                Head::Request {
                    method,
                    uri,
                    version,
                },
                _,
            ) => (method, uri, version),
        };
        match d {
            Derived::Method => out.push_str(method.as_str()),
            Derived::Authority => self.write_authority(id, out)?,
            Derived::Scheme => push_lowercase(out, self.scheme),
            Derived::TargetUri => {
                push_lowercase(out, self.scheme);
                out.push_str("://");
                self.write_authority(id, out)?;
                write_path_and_query(uri, out);
            }
            Derived::RequestTarget => {
                if method == Method::CONNECT {
                    self.write_authority(id, out)?;
                } else if uri.scheme().is_some() && version <= Version::HTTP_11 {
                    // absolute-form, as on the request line to a proxy.
                    out.push_str(&uri.to_string());
                } else if uri.path() == "*" {
                    out.push('*');
                } else {
                    write_path_and_query(uri, out);
                }
            }
            Derived::Path => out.push_str(path_of(uri)),
            Derived::Query => {
                out.push('?');
                out.push_str(uri.query().unwrap_or(""));
            }
            Derived::QueryParam => {
                let Some(wanted) = id.query_param_name() else {
                    return Err(id.unsupported("@query-param needs a name parameter"));
                };
                let mut found: Option<std::borrow::Cow<'_, str>> = None;
                for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
                    if encoded_eq(&name, wanted) {
                        if found.is_some() {
                            // RFC 9421 §2.2.8: a repeated parameter cannot be covered alone.
                            return Err(id.absent("the query parameter occurs more than once"));
                        }
                        found = Some(value);
                    }
                }
                let Some(value) = found else {
                    return Err(id.absent("no such query parameter"));
                };
                out.extend(utf8_percent_encode(&value, FORM));
            }
            Derived::Status => {}
        }
        Ok(())
    }

    /// RFC 9421 §2.2.3: host lowercased, default port dropped.
    fn write_authority(&self, id: &ComponentId<'_>, out: &mut String) -> Result<(), Error> {
        let Some(authority) = self.authority else {
            return Err(id.absent("the request has no authority (Host)"));
        };
        let authority = authority.trim();
        let default_port = match self.scheme {
            s if s.eq_ignore_ascii_case("https") => Some(":443"),
            s if s.eq_ignore_ascii_case("http") => Some(":80"),
            _ => None,
        };
        let authority = match default_port {
            Some(port) => authority.strip_suffix(port).unwrap_or(authority),
            None => authority,
        };
        push_lowercase(out, authority);
        Ok(())
    }

    /// RFC 9421 §2.1: field lines trimmed and joined with `, `, or one of the
    /// structured-field forms (`;sf`, `;key`) or byte sequences (`;bs`).
    fn write_field(&self, id: &ComponentId<'_>, out: &mut String) -> Result<(), Error> {
        let name = id.name();
        let mut lines = self.headers.get_all(name).iter().peekable();
        if lines.peek().is_none() {
            return Err(id.absent("the field is absent"));
        }
        if id.has(&ComponentParam::Bs) {
            let mut list = sfv::ListSerializer::with_buffer(out);
            for line in lines {
                let _ = list.bare_item(trim_ows(line.as_bytes()));
            }
            return Ok(());
        }
        let sf = id.has(&ComponentParam::Sf);
        let key = id.dict_key();
        if !sf && key.is_none() {
            let mut first = true;
            for line in lines {
                let Some(text) = ascii(trim_ows(line.as_bytes())) else {
                    return Err(id.unsupported("the field is not ASCII; cover it with ;bs"));
                };
                if !first {
                    out.push_str(", ");
                }
                first = false;
                out.push_str(text);
            }
            return Ok(());
        }
        // Structured forms parse the combined value; rare, so owned sfv types are fine.
        let mut combined = String::new();
        for line in lines {
            let Some(text) = ascii(trim_ows(line.as_bytes())) else {
                return Err(id.unsupported("the field is not a structured field"));
            };
            if !combined.is_empty() {
                combined.push_str(", ");
            }
            combined.push_str(text);
        }
        let not_sf = |e: sfv::Error| id.unsupported(&format!("not a structured field: {e}"));
        if let Some(key) = key {
            let dict: sfv::Dictionary = sfv::Parser::new(&combined).parse().map_err(not_sf)?;
            let Some(member) = dict.get(key) else {
                return Err(id.absent("the dictionary has no such key"));
            };
            sfv::ListSerializer::with_buffer(out).members([member]);
            return Ok(());
        }
        match field_type(name) {
            FieldType::Dictionary => {
                let dict: sfv::Dictionary = sfv::Parser::new(&combined).parse().map_err(not_sf)?;
                sfv::DictSerializer::with_buffer(out).members(&dict);
            }
            FieldType::List => {
                let list: sfv::List = sfv::Parser::new(&combined).parse().map_err(not_sf)?;
                sfv::ListSerializer::with_buffer(out).members(&list);
            }
            FieldType::Item => {
                let item: sfv::Item = sfv::Parser::new(&combined).parse().map_err(not_sf)?;
                let ser = sfv::ItemSerializer::with_buffer(out).bare_item(&item.bare_item);
                let _ = ser.parameters(&item.params);
            }
            FieldType::Unknown => {
                // A field of unknown type: read it as a dictionary if it parses as one
                // (dictionaries are the common case for signed fields), else as a list.
                if let Ok(dict) = sfv::Parser::new(&combined).parse::<sfv::Dictionary>() {
                    sfv::DictSerializer::with_buffer(out).members(&dict);
                } else {
                    let list: sfv::List = sfv::Parser::new(&combined).parse().map_err(not_sf)?;
                    sfv::ListSerializer::with_buffer(out).members(&list);
                }
            }
        }
        Ok(())
    }
}

enum FieldType {
    Dictionary,
    List,
    Item,
    Unknown,
}

/// Structured types of the registered fields a signature is likely to cover with `;sf`.
fn field_type(name: &str) -> FieldType {
    match name {
        "signature"
        | "signature-input"
        | "accept-signature"
        | "content-digest"
        | "repr-digest"
        | "want-content-digest"
        | "want-repr-digest"
        | "priority"
        | "cdn-cache-control"
        | "example-dict" => FieldType::Dictionary,
        "cache-status" | "proxy-status" | "accept-ch" | "ratelimit" | "ratelimit-policy" => {
            FieldType::List
        }
        "example-integer" | "example-string" => FieldType::Item,
        _ => FieldType::Unknown,
    }
}

fn path_of(uri: &Uri) -> &str {
    match uri.path() {
        "" => "/",
        p => p,
    }
}

fn write_path_and_query(uri: &Uri, out: &mut String) {
    out.push_str(path_of(uri));
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
}

fn push_lowercase(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| c.to_ascii_lowercase()));
}

fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn ascii(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        std::str::from_utf8(b).ok()
    } else {
        None
    }
}

/// Whether `raw` (a decoded query name) percent-encodes to exactly `encoded`, without
/// allocating.
fn encoded_eq(raw: &str, encoded: &str) -> bool {
    let mut rest = encoded;
    for chunk in utf8_percent_encode(raw, FORM) {
        match rest.strip_prefix(chunk) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &str) -> http::request::Parts {
        crate::raw::parse_request(raw.as_bytes()).unwrap().0
    }

    fn check(raw: &str, component: &str, expected: Result<&str, &str>) {
        let parts = request(raw);
        let msg = Message::request(&parts);
        let id: ComponentId<'static> = component.parse().unwrap();
        let mut out = String::new();
        match (msg.write_value(&id, &mut out), expected) {
            (Ok(()), Ok(want)) => assert_eq!(out, want, "{component}"),
            (Err(e), Err(code)) => assert_eq!(e.code(), code, "{component}: {e}"),
            (got, want) => panic!("{component}: got {got:?} ({out:?}), want {want:?}"),
        }
    }

    const REQ: &str = "POST /path?param=value&foo=bar&baz=bat%2Dman&qux=&sp=a+b%20c HTTP/1.1\r\n\
        Host: WWW.Example.com:443\r\nX-Two: a \r\nX-Two:  b\r\n\
        Example-Dict:  a=1,    b=2;x=1;y=2,   c=(a   b   c)  \r\n\r\n";

    #[test]
    fn derived_components() {
        check(REQ, "@method", Ok("POST"));
        check(REQ, "@authority", Ok("www.example.com"));
        check(REQ, "@scheme", Ok("https"));
        check(REQ, "@path", Ok("/path"));
        check(
            REQ,
            "@query",
            Ok("?param=value&foo=bar&baz=bat%2Dman&qux=&sp=a+b%20c"),
        );
        check(
            REQ,
            "@target-uri",
            Ok("https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman&qux=&sp=a+b%20c"),
        );
        check(
            REQ,
            "@request-target",
            Ok("/path?param=value&foo=bar&baz=bat%2Dman&qux=&sp=a+b%20c"),
        );
        check(REQ, r#"@query-param;name="baz""#, Ok("bat-man"));
        check(REQ, r#"@query-param;name="qux""#, Ok(""));
        check(REQ, r#"@query-param;name="sp""#, Ok("a%20b%20c"));
        check(
            REQ,
            r#"@query-param;name="nope""#,
            Err("signature-component-absent"),
        );
        check(REQ, "@status", Err("signature-component-absent"));
        check("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "@query", Ok("?"));
        check(
            "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            "@request-target",
            Ok("*"),
        );
        check(
            "GET /?a=1&a=2 HTTP/1.1\r\nHost: a\r\n\r\n",
            r#"@query-param;name="a""#,
            Err("signature-component-absent"),
        );
    }

    #[test]
    fn rfc_query_param_encoding_example() {
        // RFC 9421 §2.2.8's example of decoding and re-encoding.
        let raw = "GET /parameters?var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace\
            &fa%C3%A7ade%22%3A%20=something HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
        check(
            raw,
            r#"@query-param;name="var""#,
            Ok("this%20is%20a%20big%0Avalue"),
        );
        check(
            raw,
            r#"@query-param;name="bar""#,
            Ok("with%20plus%20whitespace"),
        );
        check(
            raw,
            r#"@query-param;name="fa%C3%A7ade%22%3A%20""#,
            Ok("something"),
        );
    }

    #[test]
    fn field_components() {
        check(REQ, "x-two", Ok("a, b"));
        check(REQ, "x-two;bs", Ok(":YQ==:, :Yg==:"));
        check(REQ, "x-absent", Err("signature-component-absent"));
        // RFC 9421 §2.1.1 and §2.1.2 examples.
        check(
            REQ,
            "example-dict",
            Ok("a=1,    b=2;x=1;y=2,   c=(a   b   c)"),
        );
        check(REQ, "example-dict;sf", Ok("a=1, b=2;x=1;y=2, c=(a b c)"));
        check(REQ, r#"example-dict;key="a""#, Ok("1"));
        check(REQ, r#"example-dict;key="b""#, Ok("2;x=1;y=2"));
        check(REQ, r#"example-dict;key="c""#, Ok("(a b c)"));
        check(
            REQ,
            r#"example-dict;key="z""#,
            Err("signature-component-absent"),
        );
        check(REQ, "@method;req", Err("signature-component-unsupported"));
    }
}
