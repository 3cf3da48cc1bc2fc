//! A small client of the admin API, over HTTP (for `apply`, `export`, `keys` against a
//! running marketplace) or in-process (for seeding the demo through the same code path
//! and audit as any other caller).

use anyhow::{Context, bail};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

/// A response: status, `ETag` revision if any, and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The body if the status is 2xx, else an error carrying the problem's detail.
    pub fn ok(self) -> anyhow::Result<Value> {
        if self.status.is_success() {
            return Ok(self.body);
        }
        bail!("{}", describe_problem(self.status, &self.body))
    }
}

/// One line for a problem body, including every invalid field.
pub fn describe_problem(status: StatusCode, body: &Value) -> String {
    let mut s = format!(
        "{} {}: {}",
        status.as_u16(),
        body.get("title")
            .and_then(Value::as_str)
            .unwrap_or(status.canonical_reason().unwrap_or("")),
        body.get("detail").and_then(Value::as_str).unwrap_or("")
    );
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        for e in errors {
            s.push_str(&format!(
                "\n  {}: {}",
                e.get("pointer").and_then(Value::as_str).unwrap_or(""),
                e.get("detail").and_then(Value::as_str).unwrap_or("")
            ));
        }
    }
    s
}

/// Where requests go.
pub enum Transport {
    Http(
        Box<
            hyper_util::client::legacy::Client<
                hyper_util::client::legacy::connect::HttpConnector,
                Body,
            >,
        >,
        String,
    ),
    Local(axum::Router),
}

/// An authenticated admin API client.
pub struct AdminClient {
    transport: Transport,
    token: String,
}

impl AdminClient {
    /// A client of the admin API at `base` (e.g. `http://127.0.0.1:7700`).
    pub fn http(base: &str, token: String) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            bail!(
                "the admin URL must be http://host:port (got {base:?}); TLS to the admin API is not supported yet, put it behind a TLS proxy"
            );
        }
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Ok(Self {
            transport: Transport::Http(Box::new(client), base),
            token,
        })
    }

    /// A client that calls an in-process admin router.
    pub fn local(router: axum::Router, token: String) -> Self {
        Self {
            transport: Transport::Local(router),
            token,
        }
    }

    /// Sends a request with an optional JSON body and `If-Match` revision.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<i64>,
    ) -> anyhow::Result<Reply> {
        let uri = match &self.transport {
            Transport::Http(_, base) => format!("{base}{path}"),
            Transport::Local(_) => path.to_owned(),
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, "application/json");
        if let Some(r) = if_match {
            req = req.header(
                header::IF_MATCH,
                HeaderValue::from_str(&format!("\"{r}\""))?,
            );
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v)?)
            }
            None => Body::empty(),
        };
        let req = req.body(body)?;
        let (status, bytes): (StatusCode, Bytes) = match &self.transport {
            Transport::Http(client, _) => {
                let resp = client.request(req).await.with_context(|| {
                    format!("cannot reach the admin API at {uri}; is `tollgate serve` running?")
                })?;
                let status = resp.status();
                (status, resp.into_body().collect().await?.to_bytes())
            }
            Transport::Local(router) => {
                use tower::ServiceExt;
                let resp = router.clone().oneshot(req).await?;
                let status = resp.status();
                (status, resp.into_body().collect().await?.to_bytes())
            }
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{method} {path}: the response is not JSON"))?
        };
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::GET, path, None, None).await?.ok()
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(Method::POST, path, Some(body), None).await?.ok()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(Method::PATCH, path, Some(body), None).await?.ok()
    }

    /// Every item of a paginated list.
    pub async fn list_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
                None => format!("{path}{sep}limit=200"),
            };
            let page = self.get(&url).await?;
            if let Some(items) = page.get("items").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(out),
            }
        }
    }
}
