//! `tollgate httpsig …`: sign and verify HTTP message signatures (RFC 9421) on raw
//! HTTP/1.1 request files, and tell whether the gateway's policy would accept them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tollgate_httpsig::{
    Algorithm, ComponentId, DigestAlgorithm, Message, Policy, SignatureInput, Signatures,
    SigningKey, VerifyingKey, content_digest, raw, verify_content_digest, verify_signature,
};

/// `tollgate httpsig` subcommands.
#[derive(Debug, Subcommand)]
pub enum HttpsigCommand {
    /// Sign a raw HTTP/1.1 request; print it with the signature fields added.
    ///
    /// The output is the request with `Signature-Input` and `Signature` added, and
    /// `Content-Digest` when it has a body and no digest yet (an existing one must match
    /// the body). The request file holds the request line, the header fields, an empty
    /// line and the body, with CRLF or LF line ends; `@authority` comes from the Host
    /// field.
    Sign(SignArgs),
    /// Verify the signatures of a raw HTTP/1.1 request.
    ///
    /// Exits 0 when a signature verifies cryptographically (and, when it covers
    /// `content-digest`, the body matches it), printing its label, covered components
    /// and whether the gateway's policy would also accept it: `@method`, `@authority`,
    /// `@path`, `@query` (and `content-digest` with a body) covered, a `keyid`, `created`
    /// within --max-age of --now, `expires` not passed. Exits 1 with the reason
    /// otherwise.
    Verify(VerifyArgs),
}

/// Algorithms, by their RFC 9421 registry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgArg {
    /// Ed25519 (PEM keys).
    Ed25519,
    /// ECDSA P-256 with SHA-256, 64-byte r‖s signatures (PEM keys).
    EcdsaP256Sha256,
    /// HMAC-SHA256 with a shared secret.
    HmacSha256,
    /// RSASSA-PSS with SHA-512 (PEM keys, 2048 bits or more).
    RsaPssSha512,
}

impl From<AlgArg> for Algorithm {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Ed25519 => Algorithm::Ed25519,
            AlgArg::EcdsaP256Sha256 => Algorithm::EcdsaP256Sha256,
            AlgArg::HmacSha256 => Algorithm::HmacSha256,
            AlgArg::RsaPssSha512 => Algorithm::RsaPssSha512,
        }
    }
}

/// How the key file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    /// PEM: a public key (SPKI) to verify, a private key (PKCS#8) to sign.
    Pem,
    /// An HMAC secret in base64, as RFC 9421 B.1.5 prints it.
    Base64,
    /// An HMAC secret as the file's exact bytes.
    Raw,
}

/// Content digest algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DigestArg {
    #[value(name = "sha-256")]
    Sha256,
    #[value(name = "sha-512")]
    Sha512,
}

/// Options of `tollgate httpsig sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The request to sign: a raw HTTP/1.1 message.
    #[arg(long, value_name = "FILE")]
    request: PathBuf,
    /// The signing key: a PEM private key (PKCS#8; SEC1 `EC PRIVATE KEY` and PKCS#1
    /// `RSA PRIVATE KEY` also work), or the shared secret for hmac-sha256.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The signature algorithm; it must match the key.
    #[arg(long, value_enum, value_name = "ALG")]
    alg: AlgArg,
    /// How the key file is encoded [default: pem, or base64 for hmac-sha256].
    #[arg(long, value_enum)]
    key_format: Option<KeyFormat>,
    /// The `keyid` parameter: the name under which the verifier knows the key.
    #[arg(long, value_name = "ID")]
    keyid: Option<String>,
    /// Covered components, in order, comma-separated: derived ones (`@method`,
    /// `@authority`, `@path`, `@query`, `@target-uri`, `@scheme`, `@request-target`,
    /// `@query-param;name="p"`) and lowercase field names with optional `;sf`, `;bs`,
    /// `;key="k"` [default: @method,@authority,@path,@query, plus content-digest when
    /// the request has a body].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    components: Option<Vec<String>>,
    /// The `created` parameter, Unix seconds [default: now].
    #[arg(long, value_name = "UNIX")]
    created: Option<i64>,
    /// The `expires` parameter, Unix seconds.
    #[arg(long, value_name = "UNIX")]
    expires: Option<i64>,
    /// The `nonce` parameter (the gateway refuses a nonce it has seen for the key).
    #[arg(long, value_name = "N")]
    nonce: Option<String>,
    /// The `tag` parameter.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Also write the `alg` parameter.
    #[arg(long)]
    with_alg: bool,
    /// The signature's label in `Signature-Input` and `Signature`.
    #[arg(long, default_value = "sig1")]
    label: String,
    /// The digest for an added `Content-Digest`.
    #[arg(long, value_enum, default_value = "sha-256")]
    digest: DigestArg,
    /// The scheme the request is sent over (`@scheme`, `@target-uri`, default port).
    #[arg(long, default_value = "https")]
    scheme: String,
}

/// Options of `tollgate httpsig verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signed request: a raw HTTP/1.1 message.
    #[arg(long, value_name = "FILE")]
    request: PathBuf,
    /// The verifying key: a PEM public key (SPKI `PUBLIC KEY`; other PEM blocks in the
    /// file are ignored), or the shared secret for hmac-sha256.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The key's algorithm [default: read from a PEM key (RSA means rsa-pss-sha512);
    /// hmac-sha256 for --key-format base64 or raw].
    #[arg(long, value_enum, value_name = "ALG")]
    alg: Option<AlgArg>,
    /// How the key file is encoded [default: pem, or base64 with --alg hmac-sha256].
    #[arg(long, value_enum)]
    key_format: Option<KeyFormat>,
    /// The time to judge `created` and `expires` against, Unix seconds [default: now].
    #[arg(long, value_name = "UNIX")]
    now: Option<i64>,
    /// The policy's maximum signature age, in seconds.
    #[arg(long, default_value_t = Policy::default().max_age, value_name = "SECS")]
    max_age: u64,
    /// The policy's tolerated clock skew, in seconds.
    #[arg(long, default_value_t = Policy::default().clock_skew, value_name = "SECS")]
    clock_skew: u64,
    /// Check only the signature with this label [default: every signature].
    #[arg(long)]
    label: Option<String>,
    /// The scheme the request was received over (`@scheme`, `@target-uri`).
    #[arg(long, default_value = "https")]
    scheme: String,
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: HttpsigCommand) -> anyhow::Result<()> {
    match cmd {
        HttpsigCommand::Sign(args) => sign(args),
        HttpsigCommand::Verify(args) => verify(args),
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The secret of an HMAC key file.
fn secret(bytes: &[u8], format: KeyFormat) -> anyhow::Result<Vec<u8>> {
    match format {
        KeyFormat::Raw => Ok(bytes.to_vec()),
        KeyFormat::Base64 => {
            let text = std::str::from_utf8(bytes).context("the key file is not base64 text")?;
            let compact: String = text.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .context("the key file is not base64")
        }
        KeyFormat::Pem => {
            bail!("hmac-sha256 takes a shared secret: use --key-format base64 or raw")
        }
    }
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let alg = Algorithm::from(args.alg);
    let key_bytes = read(&args.key)?;
    let format = args.key_format.unwrap_or(if alg.is_symmetric() {
        KeyFormat::Base64
    } else {
        KeyFormat::Pem
    });
    let key = if alg.is_symmetric() {
        SigningKey::hmac_sha256(&secret(&key_bytes, format)?)?
    } else {
        if format != KeyFormat::Pem {
            bail!("{alg} keys are PEM files (--key-format pem)");
        }
        SigningKey::from_private_key_pem(alg, &key_bytes)
            .with_context(|| format!("cannot use {} as a {alg} key", args.key.display()))?
    };

    let original = read(&args.request)?;
    let (head, body) = split_message(&original)?;
    let eol = if head.contains("\r\n") { "\r\n" } else { "\n" };
    let mut head = head.trim_end_matches(['\r', '\n']).to_owned();

    // Bind the body: add Content-Digest, or check the one the request already has.
    let (parts, _) = raw::parse_request(&original)?;
    if !body.is_empty() {
        if parts.headers.contains_key("content-digest") {
            verify_content_digest(&parts.headers, body)
                .context("the request's Content-Digest does not match its body")?;
        } else {
            let alg = match args.digest {
                DigestArg::Sha256 => DigestAlgorithm::Sha256,
                DigestArg::Sha512 => DigestAlgorithm::Sha512,
            };
            head.push_str(eol);
            head.push_str("Content-Digest: ");
            head.push_str(&content_digest(body, alg));
        }
    }
    let with_digest = assemble(&head, eol, &[], body);
    let (parts, body) = raw::parse_request(&with_digest)?;

    let names: Vec<String> = match args.components {
        Some(list) => list.into_iter().filter(|c| !c.trim().is_empty()).collect(),
        None => {
            let mut v: Vec<String> = ["@method", "@authority", "@path", "@query"]
                .map(String::from)
                .to_vec();
            if !body.is_empty() {
                v.push("content-digest".into());
            }
            v
        }
    };
    let components = names
        .iter()
        .map(|c| c.parse::<ComponentId<'static>>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut input = SignatureInput::new(&args.label, components)?
        .with_created(args.created.unwrap_or_else(unix_now))?;
    if let Some(t) = args.expires {
        input = input.with_expires(t)?;
    }
    if let Some(n) = &args.nonce {
        input = input.with_nonce(n)?;
    }
    if let Some(k) = &args.keyid {
        input = input.with_keyid(k)?;
    }
    if let Some(t) = &args.tag {
        input = input.with_tag(t)?;
    }
    if args.with_alg {
        input = input.with_alg(alg);
    }
    let msg = Message::request(&parts).with_scheme(&args.scheme);
    let signed = tollgate_httpsig::sign(&msg, &input, &key)?;
    let out = assemble(
        &head,
        eol,
        &[
            format!("Signature-Input: {}", signed.signature_input),
            format!("Signature: {}", signed.signature),
        ],
        body,
    );
    write_bytes(&out)
}

/// The head (up to and including its empty line, if any) and the body of a raw message.
fn split_message(raw: &[u8]) -> anyhow::Result<(&str, &[u8])> {
    let (_, body) = raw::parse_request(raw)?;
    // The body is a tail of `raw`, possibly cut to Content-Length: the head ends where
    // the body starts.
    let start = (body.as_ptr() as usize).saturating_sub(raw.as_ptr() as usize);
    let head = std::str::from_utf8(&raw[..start.min(raw.len())])
        .context("the request head is not UTF-8")?;
    Ok((head, body))
}

fn assemble(head: &str, eol: &str, extra: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + body.len() + 256);
    out.extend_from_slice(head.as_bytes());
    for line in extra {
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(eol.as_bytes());
    out.extend_from_slice(eol.as_bytes());
    out.extend_from_slice(body);
    out
}

fn write_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write output"),
    }
}

fn verifying_key(args: &VerifyArgs) -> anyhow::Result<VerifyingKey> {
    let bytes = read(&args.key)?;
    let alg = args.alg.map(Algorithm::from);
    let format = args.key_format.unwrap_or(match alg {
        Some(Algorithm::HmacSha256) => KeyFormat::Base64,
        _ => KeyFormat::Pem,
    });
    let key = match (format, alg) {
        (KeyFormat::Pem, None) => VerifyingKey::from_public_key_pem_any(&bytes)?,
        (KeyFormat::Pem, Some(Algorithm::HmacSha256)) => {
            bail!("hmac-sha256 takes a shared secret: use --key-format base64 or raw")
        }
        (KeyFormat::Pem, Some(alg)) => VerifyingKey::from_public_key_pem(alg, &bytes)?,
        (_, None | Some(Algorithm::HmacSha256)) => {
            VerifyingKey::hmac_sha256(&secret(&bytes, format)?)?
        }
        (_, Some(alg)) => bail!("{alg} keys are PEM files (--key-format pem)"),
    };
    Ok(key)
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let key = verifying_key(&args).with_context(|| format!("cannot use {}", args.key.display()))?;
    let raw_request = read(&args.request)?;
    let (parts, body) = raw::parse_request(&raw_request)
        .with_context(|| format!("{} is not an HTTP/1.1 request", args.request.display()))?;
    let msg = Message::request(&parts)
        .with_scheme(&args.scheme)
        .with_body(body);
    let sigs = Signatures::parse(&parts.headers)?;
    if sigs.is_empty() {
        bail!("the request has no Signature-Input and Signature fields");
    }
    let now = args.now.unwrap_or_else(unix_now);
    let policy = Policy {
        max_age: args.max_age,
        clock_skew: args.clock_skew,
        ..Policy::default()
    };

    let mut reports = Vec::new();
    let mut first_error = None;
    for input in sigs.inputs() {
        if args.label.as_deref().is_some_and(|l| l != input.label()) {
            continue;
        }
        let result = sigs
            .get(input.label())
            .and_then(|(input, sig)| verify_signature(&msg, input, sig, &key));
        let covered: Vec<String> = input.components().iter().map(ToString::to_string).collect();
        let mut report = json!({
            "label": input.label(),
            "verified": result.is_ok(),
            "alg": key.algorithm().name(),
            "keyid": input.keyid(),
            "covered": covered,
            "created": input.created(),
            "expires": input.expires(),
            "nonce": input.nonce(),
            "tag": input.tag(),
        });
        match &result {
            Ok(()) => {
                let policy_result = policy.check(input, &msg, now);
                report["policy"] = json!({
                    "pass": policy_result.is_ok(),
                    "now": now,
                    "error": policy_result.as_ref().err().map(problem),
                });
            }
            Err(e) => {
                report["error"] = problem(e);
                if first_error.is_none() {
                    first_error = Some(format!("{}: {e}", input.label()));
                }
            }
        }
        reports.push(report);
    }
    if reports.is_empty() {
        bail!(
            "the request has no signature labelled {:?}",
            args.label.unwrap_or_default()
        );
    }
    let verified = reports.iter().any(|r| r["verified"] == true);
    if args.json {
        let doc = json!({"verified": verified, "signatures": reports});
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for r in &reports {
            print_report(r);
        }
    }
    if verified {
        Ok(())
    } else {
        Err(anyhow!(
            "no signature verifies ({})",
            first_error.unwrap_or_default()
        ))
    }
}

fn problem(e: &tollgate_httpsig::Error) -> Value {
    json!({"code": e.code(), "message": e.to_string()})
}

fn print_report(r: &Value) {
    let label = r["label"].as_str().unwrap_or("");
    if r["verified"] != true {
        outln!(
            "{label}: NOT verified: {}",
            r["error"]["message"].as_str().unwrap_or("")
        );
        return;
    }
    let keyid = match r["keyid"].as_str() {
        Some(k) => format!(", keyid {k:?}"),
        None => String::new(),
    };
    outln!(
        "{label}: verified ({}{keyid})",
        r["alg"].as_str().unwrap_or("")
    );
    let covered: Vec<&str> = r["covered"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    outln!("  covered: {}", covered.join(" "));
    if let Some(created) = r["created"].as_i64() {
        let now = r["policy"]["now"].as_i64().unwrap_or(created);
        outln!("  created: {created} ({} s before now)", now - created);
    }
    if let Some(expires) = r["expires"].as_i64() {
        outln!("  expires: {expires}");
    }
    if r["policy"]["pass"] == true {
        outln!("  gateway policy: pass");
    } else {
        outln!(
            "  gateway policy: FAIL: {}",
            r["policy"]["error"]["message"].as_str().unwrap_or("")
        );
    }
}
