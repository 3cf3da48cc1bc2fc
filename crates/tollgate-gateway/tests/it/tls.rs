//! HTTPS on the gateway listener: a self-signed certificate made in the test, clients
//! that trust only it, HTTP/1.1 and HTTP/2 chosen through ALPN.

use http::Version;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tollgate_gateway::TlsFiles;

use super::*;

struct Certificate {
    _dir: tempfile::TempDir,
    files: TlsFiles,
    der: CertificateDer<'static>,
}

fn self_signed() -> Certificate {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert_path: dir.path().join("gateway.crt"),
        key_path: dir.path().join("gateway.key"),
        client_ca: None,
    };
    std::fs::write(&files.cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&files.key_path, ck.signing_key.serialize_pem()).unwrap();
    Certificate {
        _dir: dir,
        files,
        der: ck.cert.der().clone(),
    }
}

fn connector(trusted: &CertificateDer<'static>, alpn: &[u8]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn serves_http1_and_http2_over_tls() {
    within(async {
        let upstream = start_upstream("a").await;
        let cert = self_signed();
        let config = GatewayConfig {
            tls: Some(cert.files.clone()),
            ..test_config()
        };
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), config).await;

        for (alpn, version) in [
            (&b"http/1.1"[..], Version::HTTP_11),
            (&b"h2"[..], Version::HTTP_2),
        ] {
            let tcp = TcpStream::connect(gw.addr).await.unwrap();
            let tls = connector(&cert.der, alpn)
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
            let io = TokioIo::new(tls);
            let request = Request::get("https://localhost/echo/v1/items?tls=1")
                .header("host", "localhost")
                .body(Full::<Bytes>::default())
                .unwrap();
            let response = if version == Version::HTTP_2 {
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                sender.send_request(request).await.unwrap()
            } else {
                let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                sender.send_request(request).await.unwrap()
            };
            assert_eq!(response.status(), 200, "{version:?}");
            assert_eq!(response.version(), version);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let echo: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(echo["path"], "/up/items", "{version:?}");
            assert_eq!(echo["query"], "tls=1");
        }
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 2);

        // A client that does not trust the certificate gets no answer.
        let tcp = TcpStream::connect(gw.addr).await.unwrap();
        let stranger = self_signed();
        let refused = connector(&stranger.der, b"h2")
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await;
        assert!(refused.is_err());
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unreadable_tls_files_fail_serve_naming_the_file() {
    within(async {
        let cert = self_signed();
        let missing = cert.files.key_path.with_file_name("missing.key");
        let config = GatewayConfig {
            tls: Some(TlsFiles {
                key_path: missing.clone(),
                ..cert.files.clone()
            }),
            ..test_config()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve(
            listener,
            SnapshotHandle::default(),
            Arc::new(AllowAll),
            config,
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let message = err.to_string();
        assert!(message.contains(&*missing.to_string_lossy()), "{message}");
    })
    .await;
}
