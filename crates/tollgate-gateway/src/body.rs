//! Body types of the proxy: the size-limited request body streamed to the upstream and
//! the response body that is either the upstream's stream or a gateway-made answer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// The downstream request body on its way to the upstream, cut off after `limit` bytes.
///
/// Bodies are streamed, never buffered, so the limit is enforced frame by frame: the frame
/// that crosses it ends the stream with [`RequestBodyError::TooLarge`], which makes the
/// client abort the upstream request. The upstream therefore never receives more than the
/// limit.
#[derive(Debug)]
pub struct LimitedBody {
    inner: Incoming,
    remaining: u64,
    /// Bytes forwarded so far, for metering.
    counter: Option<Arc<AtomicU64>>,
    /// A signed request's `Content-Digest`, checked when the body ends.
    digest: Option<Box<tollgate_httpsig::ContentDigestCheck>>,
}

impl LimitedBody {
    pub(crate) fn new(inner: Incoming, limit: u64) -> Self {
        Self {
            inner,
            remaining: limit,
            counter: None,
            digest: None,
        }
    }

    /// Also checks the body against a signed `Content-Digest`: a mismatch ends the stream
    /// with [`RequestBodyError::DigestMismatch`] (the upstream request is aborted).
    pub(crate) fn with_digest(mut self, check: tollgate_httpsig::ContentDigestCheck) -> Self {
        self.digest = Some(Box::new(check));
        self
    }

    /// Also counts the bytes forwarded into `counter`.
    pub(crate) fn counted(mut self, counter: Arc<AtomicU64>) -> Self {
        self.counter = Some(counter);
        self
    }
}

/// Why the request body stream ended early.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    /// The body grew past the configured limit.
    #[error("request body exceeds the limit")]
    TooLarge,
    /// The downstream connection failed while sending the body.
    #[error("reading the request body failed: {0}")]
    Downstream(#[source] hyper::Error),
    /// The body does not match the `Content-Digest` its signature covers.
    #[error("the request body does not match its signed Content-Digest")]
    DigestMismatch,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.remaining = 0;
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge)));
                    }
                    this.remaining -= len;
                    if let Some(counter) = &this.counter {
                        counter.fetch_add(len, Ordering::Relaxed);
                    }
                    if let Some(check) = &mut this.digest {
                        check.update(data);
                        // The last frame is held back until the digest is checked, so
                        // an upstream never receives a whole tampered body.
                        if this.inner.is_end_stream()
                            && let Some(check) = this.digest.take()
                            && check.finish().is_err()
                        {
                            return Poll::Ready(Some(Err(RequestBodyError::DigestMismatch)));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(RequestBodyError::Downstream(e)))),
            None => match this.digest.take().map(|check| check.finish()) {
                Some(Err(_)) => Poll::Ready(Some(Err(RequestBodyError::DigestMismatch))),
                _ => Poll::Ready(None),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        // A pending digest check still has to run at the end of the stream.
        self.digest.is_none() && self.inner.is_end_stream()
    }

    // Passing the hint through lets the client send an exact `Content-Length` (or none
    // for an empty body) instead of falling back to chunked encoding.
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a response body stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ResponseBodyError {
    /// The upstream's body failed mid-stream.
    #[error("upstream body: {0}")]
    Upstream(#[from] hyper::Error),
    /// Metering `sync`: the usage event could not be made durable, so the end of the
    /// response is withheld (an undelivered response is not a response the consumer
    /// can be billed for, nor one it got for free).
    #[error("usage event not durable: {0}")]
    NotDurable(std::sync::Arc<str>),
}

/// Body of every response the gateway sends.
#[derive(Debug)]
pub enum ResponseBody {
    /// The upstream's response, streamed through.
    Upstream(Incoming),
    /// A body the gateway made (problem details, health); `None` once sent.
    Full(Option<Bytes>),
    /// Another body, metered for the usage record.
    Metered(Box<crate::usage::MeteredBody>),
}

impl ResponseBody {
    /// A complete body.
    pub fn full(bytes: Bytes) -> Self {
        ResponseBody::Full(Some(bytes))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream(incoming) => Pin::new(incoming)
                .poll_frame(cx)
                .map_err(ResponseBodyError::Upstream),
            ResponseBody::Metered(body) => Pin::new(&mut **body).poll_frame(cx),
            ResponseBody::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(incoming) => incoming.is_end_stream(),
            ResponseBody::Metered(body) => body.is_end_stream(),
            ResponseBody::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(incoming) => incoming.size_hint(),
            ResponseBody::Metered(body) => body.size_hint(),
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
