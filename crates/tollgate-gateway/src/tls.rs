//! TLS for the gateway listener: a rustls server configuration (aws-lc-rs provider) from a
//! PEM certificate chain and private key, offering HTTP/2 and HTTP/1.1 through ALPN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The certificate and key the gateway serves HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

/// Why the TLS configuration could not be loaded. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls certificate file {}: {source}", path.display())]
    Certificate {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("tls certificate file {} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("tls key file {}: {source}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error(
        "tls key file {} does not fit certificate file {}: {source}",
        key.display(),
        cert.display()
    )]
    Config {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// ALPN protocols offered, in order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Loads `files` into a rustls server configuration.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(&files.cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_path).map_err(|source| TlsError::Key {
        path: files.key_path.clone(),
        source,
    })?;
    let config_error = |source| TlsError::Config {
        cert: files.cert_path.clone(),
        key: files.key_path.clone(),
        source,
    };
    // The provider is named, not taken from the process default, so no other crate's
    // choice of crypto backend can change it.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client_certs = Arc::new(OptionalClientCert {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_client_cert_verifier(client_certs)
        .with_single_cert(certs, key)
        .map_err(config_error)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A TLS acceptor for `files`.
/// Asks every client for a certificate and accepts any, or none (RFC 8705 mutual TLS):
/// the handshake proves the client holds the certificate's key, and which certificates
/// count is decided per request — a self-signed client certificate is matched by its
/// SHA-256 thumbprint at the token endpoint, and a token bound to it (`cnf.x5t#S256`) is
/// refused over a connection with another certificate.
#[derive(Debug)]
struct OptionalClientCert {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::server::danger::ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The SHA-256 thumbprint of the TLS client certificate of a request's connection, as
/// a request extension (absent without TLS or without a client certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCert(pub tollgate_oauth::CertThumbprint);

pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    server_config(files).map(TlsAcceptor::from)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |source| TlsError::Certificate {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files {
        _dir: tempfile::TempDir,
        files: TlsFiles,
    }

    fn write(cert: &str, key: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert_path: dir.path().join("cert.pem"),
            key_path: dir.path().join("key.pem"),
        };
        std::fs::write(&files.cert_path, cert).unwrap();
        std::fs::write(&files.key_path, key).unwrap();
        Files { _dir: dir, files }
    }

    fn self_signed() -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (ck.cert.pem(), ck.signing_key.serialize_pem())
    }

    #[test]
    fn loads_a_certificate_and_offers_h2_and_http11() {
        let (cert, key) = self_signed();
        let f = write(&cert, &key);
        let config = server_config(&f.files).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn errors_name_the_file() {
        let (cert, key) = self_signed();
        let (other_cert, _) = self_signed();
        let check = |f: &Files, expected_file: &Path, expected: &str| {
            let err = server_config(&f.files).unwrap_err().to_string();
            assert!(
                err.contains(&*expected_file.to_string_lossy()),
                "{err} does not name {}",
                expected_file.display()
            );
            assert!(err.contains(expected), "{err}");
        };

        let f = write(&cert, &key);
        let missing = TlsFiles {
            cert_path: f.files.cert_path.with_file_name("missing.pem"),
            ..f.files.clone()
        };
        let missing = Files {
            _dir: tempfile::tempdir().unwrap(),
            files: missing,
        };
        check(&missing, &missing.files.cert_path, "certificate file");

        let f = write("not a certificate\n", &key);
        check(&f, &f.files.cert_path, "no PEM certificate");
        // A key file given as the certificate holds no certificate.
        let f = write(&key, &key);
        check(&f, &f.files.cert_path, "no PEM certificate");
        let f = write(&cert, &cert);
        check(&f, &f.files.key_path, "tls key file");
        let f = write(&cert, "-----BEGIN PRIVATE KEY-----\n!!!\n");
        check(&f, &f.files.key_path, "tls key file");
        let f = write(&other_cert, &key);
        check(&f, &f.files.key_path, "does not fit");
    }
}
