//! HTTP/1.1 response framing for the load generator: just enough to find where each
//! keep-alive response ends (`Content-Length` or chunked) and read its status.

/// A receive buffer that responses are framed in place from, without copying them out.
#[derive(Debug)]
pub struct RespBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

/// One framed response.
#[derive(Debug, Clone, Copy)]
pub struct Framed {
    /// The status code.
    pub status: u16,
    /// Whether the server asked to close the connection after it.
    pub close: bool,
}

impl Default for RespBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl RespBuf {
    /// An empty buffer of 64 KiB.
    pub fn new() -> Self {
        RespBuf {
            data: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Forgets buffered bytes (after a reconnect).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Free space to read into; compacts or grows the buffer first when needed.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.data.resize(self.data.len() * 2, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Records that `n` bytes were read into [`spare`](Self::spare).
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// Takes one complete response off the front, if the buffer holds one.
    pub fn take(&mut self) -> Result<Option<Framed>, String> {
        let buf = &self.data[self.start..self.end];
        match frame(buf)? {
            Some((framed, len)) => {
                self.start += len;
                Ok(Some(framed))
            }
            None => Ok(None),
        }
    }
}

/// Frames one response at the start of `buf`: the response and its length in bytes, or
/// `None` while it is incomplete.
pub fn frame(buf: &[u8]) -> Result<Option<(Framed, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let status = res.code.unwrap_or(0);
    let mut content_length = None;
    let mut chunked = false;
    let mut close = res.version == Some(0);
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).map_err(|e| e.to_string())?;
            content_length = Some(
                text.trim()
                    .parse::<usize>()
                    .map_err(|e| format!("bad content-length: {e}"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    let framed = Framed { status, close };
    if chunked {
        return Ok(chunked_len(&buf[head_len..])?.map(|n| (framed, head_len + n)));
    }
    let body = match content_length {
        Some(n) => n,
        None if status == 204 || status == 304 || (100..200).contains(&status) => 0,
        None => return Err("response without length (read-to-close) is not supported".into()),
    };
    if buf.len() < head_len + body {
        return Ok(None);
    }
    Ok(Some((framed, head_len + body)))
}

/// The length of a complete chunked body at the start of `buf`, trailers included.
fn chunked_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&buf[at..]) else {
            return Ok(None);
        };
        let line = &buf[at..at + eol];
        let hex = line.split(|b| *b == b';').next().unwrap_or_default();
        let text = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(text.trim(), 16)
            .map_err(|e| format!("bad chunk size {text:?}: {e}"))?;
        at += eol + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(eol) = find_crlf(&buf[at..]) else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<(u16, usize)>) {
        let got = frame(input.as_bytes()).unwrap().map(|(f, n)| (f.status, n));
        assert_eq!(got, expected, "{input:?}");
    }

    #[test]
    fn frames_lengths_and_chunks() {
        let cl = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        check(cl, Some((200, cl.len())));
        check(&cl[..cl.len() - 1], None);
        let ch = "HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        check(ch, Some((201, ch.len())));
        check(&ch[..ch.len() - 2], None);
        let two = format!("{cl}{cl}");
        check(&two, Some((200, cl.len())));
        check("HTTP/1.1 204 No Content\r\n\r\n", Some((204, 27)));
    }
}
