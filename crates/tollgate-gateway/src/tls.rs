//! TLS for the gateway listener: a rustls server configuration (aws-lc-rs provider) from a
//! PEM certificate chain and private key, offering HTTP/2 and HTTP/1.1 through ALPN, and
//! the optional client CA (with CRLs) that RFC 8705 `tls_client_auth` clients chain to.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use tokio_rustls::TlsAcceptor;
use tollgate_oauth::CertThumbprint;
use tollgate_oauth::mtls::CertIdentity;

/// The certificate and key the gateway serves HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// The CA that issues client certificates for `tls_client_auth`, if any.
    pub client_ca: Option<ClientCaFiles>,
}

/// The trust anchors and revocation lists client certificates are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCaFiles {
    /// PEM file with one or more CA certificates (trust anchors).
    pub ca_path: PathBuf,
    /// CRL files (PEM `X509 CRL` blocks, or one DER CRL per file). With CRLs, the status
    /// of every certificate in a client's chain must be known: a chain whose issuer has
    /// no CRL here is refused rather than waved through.
    pub crl_paths: Vec<PathBuf>,
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
    #[error("tls client CA file {}: {source}", path.display())]
    ClientCa {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("tls client CA file {} holds no usable CA certificate{why}", path.display())]
    NoClientCa { path: PathBuf, why: String },
    #[error("tls CRL file {}: {why}", path.display())]
    Crl { path: PathBuf, why: String },
    #[error("tls client CA {} with its CRLs: {why}", path.display())]
    ClientVerifier { path: PathBuf, why: String },
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

/// The TLS client certificate of a request's connection, as a request extension (absent
/// without TLS or without a client certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// SHA-256 of the end-entity certificate (`x5t#S256`): what
    /// `self_signed_tls_client_auth` and certificate-bound tokens compare.
    pub thumbprint: CertThumbprint,
    /// The outcome of checking the chain against the configured client CA, done once per
    /// connection right after the handshake.
    pub ca: CaCheck,
}

/// Whether a client certificate chains to the configured client CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaCheck {
    /// The marketplace configures no client CA.
    NotConfigured,
    /// The chain verified (signatures, validity, client-auth usage, CRLs); the
    /// certificate's names, for matching a client's registered subject.
    Verified(Arc<CertIdentity>),
    /// The chain did not verify, with the reason (expired, revoked, unknown issuer, …).
    Rejected(Arc<str>),
}

impl ClientCert {
    /// The client certificate of a connection: `chain` as the client sent it, end entity
    /// first; `None` without a certificate.
    pub fn from_chain(chain: &[CertificateDer<'_>], ca: Option<&ClientCa>) -> Option<Self> {
        let (end_entity, intermediates) = chain.split_first()?;
        Some(ClientCert {
            thumbprint: CertThumbprint::of_der(end_entity),
            ca: match ca {
                None => CaCheck::NotConfigured,
                Some(ca) => ca.check(end_entity, intermediates, UnixTime::now()),
            },
        })
    }
}

/// The client CA and its CRLs, reloadable while the gateway runs (CRLs are reissued
/// often; a restart per CRL would be absurd).
pub struct ClientCa {
    files: ClientCaFiles,
    verifier: ArcSwap<VerifierState>,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCa")
            .field("files", &self.files)
            .finish()
    }
}

struct VerifierState {
    verifier: Arc<dyn ClientCertVerifier>,
    /// Modification times of the CA file and every CRL file when they were read.
    stamps: Vec<Option<SystemTime>>,
}

impl ClientCa {
    /// Loads the CA certificates and CRLs; every error names its file.
    pub fn load(files: &ClientCaFiles) -> Result<Self, TlsError> {
        let state = build_verifier(files)?;
        Ok(ClientCa {
            files: files.clone(),
            verifier: ArcSwap::from_pointee(state),
        })
    }

    /// Re-reads the files if any changed since they were read. A file that no longer
    /// loads leaves the previous CA and CRLs in force (and returns the error), so a
    /// half-written CRL never opens the door.
    pub fn refresh(&self) -> Result<bool, TlsError> {
        if stamps(&self.files) == self.verifier.load().stamps {
            return Ok(false);
        }
        let state = build_verifier(&self.files)?;
        self.verifier.store(Arc::new(state));
        Ok(true)
    }

    /// Checks `end_entity` with its `intermediates` against the CA at `now`.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> CaCheck {
        let state = self.verifier.load();
        match state
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(_) => match CertIdentity::from_der(end_entity) {
                Ok(identity) => CaCheck::Verified(Arc::new(identity)),
                Err(e) => CaCheck::Rejected(e.to_string().into()),
            },
            Err(e) => CaCheck::Rejected(describe(&e).into()),
        }
    }
}

/// A reason a client can act on, from rustls' certificate error.
fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Revoked => "the client certificate is revoked".to_owned(),
            C::UnknownIssuer => {
                "the client certificate does not chain to the marketplace's client CA".to_owned()
            }
            // An issuer of the same name but another key: a forgery or a re-keyed CA.
            C::BadSignature => {
                "the client certificate does not chain to the marketplace's client CA (its signature does not verify)".to_owned()
            }
            C::Expired | C::ExpiredContext { .. } => "the client certificate has expired".to_owned(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the client certificate is not valid yet".to_owned()
            }
            C::UnknownRevocationStatus => {
                "the revocation status of the client certificate is unknown (no CRL covers its issuer)"
                    .to_owned()
            }
            C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
                "the CRL covering the client certificate has expired".to_owned()
            }
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "the client certificate is not valid for TLS client authentication".to_owned()
            }
            other => format!("the client certificate was refused: {other:?}"),
        },
        other => format!("the client certificate was refused: {other}"),
    }
}

fn stamps(files: &ClientCaFiles) -> Vec<Option<SystemTime>> {
    std::iter::once(&files.ca_path)
        .chain(&files.crl_paths)
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn build_verifier(files: &ClientCaFiles) -> Result<VerifierState, TlsError> {
    // Taken before reading, so a change during the read is seen by the next refresh.
    let stamps = stamps(files);
    let path = &files.ca_path;
    let cas = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::ClientCa {
            path: path.clone(),
            source,
        })?;
    let mut roots = rustls::RootCertStore::empty();
    let mut why = String::new();
    for ca in cas {
        if let Err(e) = roots.add(ca) {
            why = format!(": {e}");
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoClientCa {
            path: path.clone(),
            why,
        });
    }
    let mut crls = Vec::new();
    for crl_path in &files.crl_paths {
        crls.extend(load_crls(crl_path)?);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::ClientVerifier {
            path: path.clone(),
            why: e.to_string(),
        })?;
    Ok(VerifierState { verifier, stamps })
}

fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let error = |why: String| TlsError::Crl {
        path: path.to_owned(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    let crls = if crls.is_empty() {
        // No PEM block: the file is one DER CRL (a SEQUENCE).
        if bytes.first() != Some(&0x30) {
            return Err(error(
                "holds neither a PEM X509 CRL nor a DER CRL".to_owned(),
            ));
        }
        vec![CertificateRevocationListDer::from(bytes)]
    } else {
        crls
    };
    // Parse now, so a bad CRL names its file at start-up rather than failing every chain.
    for crl in &crls {
        webpki::OwnedCertRevocationList::from_der(crl).map_err(|e| error(format!("{e:?}")))?;
    }
    Ok(crls)
}

/// The listener's TLS: the acceptor and, when configured, the client CA.
#[derive(Clone)]
pub struct TlsSetup {
    pub acceptor: TlsAcceptor,
    pub client_ca: Option<Arc<ClientCa>>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("client_ca", &self.client_ca)
            .finish_non_exhaustive()
    }
}

/// Loads everything `files` names; each error names its file.
pub fn load(files: &TlsFiles) -> Result<TlsSetup, TlsError> {
    let acceptor = TlsAcceptor::from(server_config(files)?);
    let client_ca = match &files.client_ca {
        Some(ca) => Some(Arc::new(ClientCa::load(ca)?)),
        None => None,
    };
    Ok(TlsSetup {
        acceptor,
        client_ca,
    })
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

/// A throw-away certificate authority for tests: client certificates it issues and the
/// CRLs that revoke them.
#[cfg(feature = "testing")]
pub mod testing {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
        DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
        KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
    };
    use rustls_pki_types::CertificateDer;
    use time::{Duration, OffsetDateTime};

    /// A CA: its certificate (PEM) and its key.
    pub struct TestCa {
        issuer: CertifiedIssuer<'static, KeyPair>,
    }

    /// A certificate it issued: PEM certificate, PEM key and DER certificate.
    #[derive(Debug, Clone)]
    pub struct TestCert {
        pub pem: String,
        pub key_pem: String,
        pub der: CertificateDer<'static>,
    }

    impl std::fmt::Debug for TestCa {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("TestCa")
        }
    }

    impl TestCa {
        /// A self-signed CA named `name`.
        pub fn new(name: &str) -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            TestCa {
                issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
            }
        }

        /// The CA certificate, PEM.
        pub fn pem(&self) -> String {
            self.issuer.pem()
        }

        /// A client certificate with serial number `serial`, subject attributes `subject`
        /// (`("CN", "payments")`, `("O", …)`, `("OU", …)`, `("C", …)`) and DNS / IP
        /// subject alternative names `sans`.
        pub fn issue(&self, serial: u64, subject: &[(&str, &str)], sans: &[&str]) -> TestCert {
            let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
            let mut params = CertificateParams::new(sans).unwrap();
            let mut dn = DistinguishedName::new();
            for (kind, value) in subject {
                let kind = match *kind {
                    "CN" => DnType::CommonName,
                    "O" => DnType::OrganizationName,
                    "OU" => DnType::OrganizationalUnitName,
                    "C" => DnType::CountryName,
                    other => panic!("unsupported attribute {other}"),
                };
                dn.push(kind, *value);
            }
            params.distinguished_name = dn;
            params.serial_number = Some(SerialNumber::from(serial));
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            TestCert {
                pem: cert.pem(),
                key_pem: key.serialize_pem(),
                der: cert.der().clone(),
            }
        }

        /// A CRL (PEM) valid for a day from now that revokes `serials`.
        pub fn crl(&self, number: u64, serials: &[u64]) -> String {
            let now = OffsetDateTime::now_utc();
            CertificateRevocationListParams {
                this_update: now - Duration::minutes(5),
                next_update: now + Duration::days(1),
                crl_number: SerialNumber::from(number),
                issuing_distribution_point: None,
                revoked_certs: serials
                    .iter()
                    .map(|s| RevokedCertParams {
                        serial_number: SerialNumber::from(*s),
                        revocation_time: now - Duration::minutes(1),
                        reason_code: Some(RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    })
                    .collect(),
                key_identifier_method: KeyIdMethod::Sha256,
            }
            .signed_by(&self.issuer)
            .unwrap()
            .pem()
            .unwrap()
        }
    }
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
            client_ca: None,
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
    fn client_ca_checks_chain_revocation_and_reloads_crls() {
        use super::testing::TestCa;
        let ca = TestCa::new("Tollgate test client CA");
        let stranger = TestCa::new("Another CA");
        // Subject attributes in certificate order (most significant first); the RFC 4514
        // string lists them the other way round.
        let good = ca.issue(
            7,
            &[("O", "Acme"), ("CN", "payments")],
            &["payments.acme.example"],
        );
        let revoked = ca.issue(8, &[("CN", "old")], &[]);
        let foreign = stranger.issue(7, &[("O", "Acme"), ("CN", "payments")], &[]);
        let dir = tempfile::tempdir().unwrap();
        let files = ClientCaFiles {
            ca_path: dir.path().join("ca.pem"),
            crl_paths: vec![dir.path().join("ca.crl")],
        };
        std::fs::write(&files.ca_path, ca.pem()).unwrap();
        std::fs::write(&files.crl_paths[0], ca.crl(1, &[8])).unwrap();
        let client_ca = ClientCa::load(&files).unwrap();
        let check = |cert: &testing::TestCert| {
            ClientCert::from_chain(std::slice::from_ref(&cert.der), Some(&client_ca))
                .unwrap()
                .ca
        };
        match check(&good) {
            CaCheck::Verified(id) => {
                assert_eq!(id.subject_dn(), "CN=payments,O=Acme");
                assert!(id.matches("payments.acme.example"));
                assert!(!id.matches("O=Acme,CN=payments"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check(&revoked),
            CaCheck::Rejected("the client certificate is revoked".into())
        );
        assert_eq!(
            check(&foreign),
            CaCheck::Rejected(
                "the client certificate does not chain to the marketplace's client CA".into()
            )
        );
        // Nothing changed: no reload. A reissued CRL revoking serial 7 as well takes effect
        // on refresh; a broken CRL file leaves the last good one in force.
        assert!(!client_ca.refresh().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&files.crl_paths[0], ca.crl(2, &[7, 8])).unwrap();
        let mtime = std::fs::metadata(&files.crl_paths[0])
            .unwrap()
            .modified()
            .unwrap();
        // Coarse file-system clocks: make sure the new file looks changed.
        let file = std::fs::File::options()
            .write(true)
            .open(&files.crl_paths[0])
            .unwrap();
        file.set_modified(mtime + std::time::Duration::from_secs(1))
            .unwrap();
        assert!(client_ca.refresh().unwrap());
        assert!(matches!(check(&good), CaCheck::Rejected(_)));
        std::fs::write(
            &files.crl_paths[0],
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        file.set_modified(mtime + std::time::Duration::from_secs(2))
            .unwrap();
        let err = client_ca.refresh().unwrap_err().to_string();
        assert!(err.contains("ca.crl"), "{err}");
        assert!(matches!(check(&good), CaCheck::Rejected(_)));
        assert_eq!(
            check(&revoked),
            CaCheck::Rejected("the client certificate is revoked".into())
        );
        // Without a client CA nothing is checked.
        assert_eq!(
            ClientCert::from_chain(std::slice::from_ref(&good.der), None)
                .unwrap()
                .ca,
            CaCheck::NotConfigured
        );
        // Load errors name the file.
        let missing = ClientCaFiles {
            ca_path: dir.path().join("nope.pem"),
            crl_paths: vec![],
        };
        assert!(
            ClientCa::load(&missing)
                .unwrap_err()
                .to_string()
                .contains("nope.pem")
        );
        std::fs::write(dir.path().join("bad.crl"), "not a crl").unwrap();
        let bad = ClientCaFiles {
            ca_path: files.ca_path.clone(),
            crl_paths: vec![dir.path().join("bad.crl")],
        };
        assert!(
            ClientCa::load(&bad)
                .unwrap_err()
                .to_string()
                .contains("bad.crl")
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
