//! A fixed-response HTTP/1.1 upstream (keep-alive, a body of N bytes) for the smoke
//! run, where nginx may be missing; the real benchmark uses nginx `return 200`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `body_len` bytes of `x` to every request on `listen`, forever.
pub fn serve(listen: SocketAddr, body_len: usize) -> std::io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .into_bytes();
    response.resize(response.len() + body_len, b'x');
    let response = Arc::new(response);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (mut s, _) = listener.accept().await?;
            let response = response.clone();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let mut buf = vec![0u8; 64 * 1024];
                let mut end = 0;
                loop {
                    // Answer every complete request head in the buffer (bodies are skipped
                    // by their Content-Length).
                    loop {
                        let mut headers = [httparse::EMPTY_HEADER; 64];
                        let mut req = httparse::Request::new(&mut headers);
                        let Ok(httparse::Status::Complete(head)) = req.parse(&buf[..end]) else {
                            break;
                        };
                        let body = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                            .and_then(|h| {
                                std::str::from_utf8(h.value)
                                    .ok()?
                                    .trim()
                                    .parse::<usize>()
                                    .ok()
                            })
                            .unwrap_or(0);
                        if end < head + body {
                            break;
                        }
                        buf.copy_within(head + body..end, 0);
                        end -= head + body;
                        if s.write_all(&response).await.is_err() {
                            return;
                        }
                    }
                    if end == buf.len() {
                        return;
                    }
                    match s.read(&mut buf[end..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => end += n,
                    }
                }
            });
        }
    })
}
