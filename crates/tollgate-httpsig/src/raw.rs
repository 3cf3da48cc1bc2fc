//! Raw HTTP/1.1 messages (files, test vectors) read with `httparse` into `http` parts.

use http::{HeaderName, HeaderValue};

use crate::Error;

const MAX_HEADERS: usize = 128;

/// Parses a raw HTTP/1.1 request (CRLF or bare LF line ends) into its head and body.
///
/// The body is what follows the blank line, cut to `Content-Length` when that is
/// shorter; chunked bodies are refused. A message that ends right after its last field
/// line (a file without the closing blank line) has an empty body.
pub fn parse_request(raw: &[u8]) -> Result<(http::request::Parts, &[u8]), Error> {
    let mut builder = http::Request::builder();
    let len = with_closed_head(raw, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let status = req.parse(bytes).map_err(bad)?;
        if status.is_partial() {
            return Ok(status);
        }
        builder = http::Request::builder()
            .method(req.method.unwrap_or("GET"))
            .uri(req.path.unwrap_or("/"))
            .version(version(req.version));
        let map = builder
            .headers_mut()
            .ok_or_else(|| Error::InvalidMessage("invalid request line".into()))?;
        copy_headers(req.headers, map)?;
        Ok(status)
    })?;
    let map = builder
        .headers_ref()
        .ok_or_else(|| Error::InvalidMessage("invalid request line".into()))?;
    let body = body(map, &raw[len..])?;
    let (parts, ()) = builder
        .body(())
        .map_err(|e| Error::InvalidMessage(e.to_string()))?
        .into_parts();
    Ok((parts, body))
}

/// Parses a raw HTTP/1.1 response into its head and body (as [`parse_request`]).
pub fn parse_response(raw: &[u8]) -> Result<(http::response::Parts, &[u8]), Error> {
    let mut builder = http::Response::builder();
    let len = with_closed_head(raw, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let status = res.parse(bytes).map_err(bad)?;
        if status.is_partial() {
            return Ok(status);
        }
        builder = http::Response::builder()
            .status(res.code.unwrap_or(200))
            .version(version(res.version));
        let map = builder
            .headers_mut()
            .ok_or_else(|| Error::InvalidMessage("invalid status line".into()))?;
        copy_headers(res.headers, map)?;
        Ok(status)
    })?;
    let map = builder
        .headers_ref()
        .ok_or_else(|| Error::InvalidMessage("invalid status line".into()))?;
    let body = body(map, &raw[len..])?;
    let (parts, ()) = builder
        .body(())
        .map_err(|e| Error::InvalidMessage(e.to_string()))?
        .into_parts();
    Ok((parts, body))
}

/// Runs `parse` over `raw`, or, when `raw` is a head without its closing blank line,
/// over a copy with one; returns where the body starts in `raw`.
fn with_closed_head(
    raw: &[u8],
    mut parse: impl FnMut(&[u8]) -> Result<httparse::Status<usize>, Error>,
) -> Result<usize, Error> {
    if let httparse::Status::Complete(n) = parse(raw)? {
        return Ok(n);
    }
    let mut closed = raw.to_vec();
    if !closed.ends_with(b"\n") {
        closed.extend_from_slice(b"\r\n");
    }
    closed.extend_from_slice(b"\r\n");
    match parse(&closed)? {
        httparse::Status::Complete(_) => Ok(raw.len()),
        httparse::Status::Partial => Err(Error::InvalidMessage(
            "the head does not end with an empty line".into(),
        )),
    }
}

fn bad(e: httparse::Error) -> Error {
    Error::InvalidMessage(e.to_string())
}

fn version(v: Option<u8>) -> http::Version {
    match v {
        Some(0) => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    }
}

fn copy_headers(from: &[httparse::Header<'_>], to: &mut http::HeaderMap) -> Result<(), Error> {
    for h in from {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|e| Error::InvalidMessage(format!("field {:?}: {e}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|e| Error::InvalidMessage(format!("field {:?}: {e}", h.name)))?;
        to.append(name, value);
    }
    Ok(())
}

fn body<'r>(headers: &http::HeaderMap, rest: &'r [u8]) -> Result<&'r [u8], Error> {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Err(Error::InvalidMessage(
            "Transfer-Encoding bodies are not supported; give the body with Content-Length".into(),
        ));
    }
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    Ok(match declared {
        Some(n) if n <= rest.len() => &rest[..n],
        _ => rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lf_and_crlf_messages() {
        for raw in [
            "POST /foo?a=1 HTTP/1.1\nHost: example.com\nX: 1\nX: 2\nContent-Length: 2\n\nhi\n",
            "POST /foo?a=1 HTTP/1.1\r\nHost: example.com\r\nX: 1\r\nX: 2\r\nContent-Length: 2\r\n\r\nhi\n",
        ] {
            let (parts, body) = parse_request(raw.as_bytes()).unwrap();
            assert_eq!(parts.method, http::Method::POST);
            assert_eq!(parts.uri, "/foo?a=1");
            assert_eq!(parts.headers.get_all("x").iter().count(), 2);
            assert_eq!(body, b"hi");
        }
        let (parts, body) = parse_response(b"HTTP/1.1 404 Not Found\nA: b\n\n").unwrap();
        assert_eq!(parts.status, 404);
        assert!(body.is_empty());
        // A head without its closing blank line is a message without a body.
        for raw in ["GET / HTTP/1.1\nHost: a\n", "GET / HTTP/1.1\r\nHost: a"] {
            let (parts, body) = parse_request(raw.as_bytes()).unwrap();
            assert_eq!(parts.headers["host"], "a");
            assert!(body.is_empty());
        }
        assert!(parse_request(b"GET / HTTP/1.1\nHost a\n\n").is_err());
    }
}
