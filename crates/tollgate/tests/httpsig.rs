//! `tollgate httpsig` end to end: the real binary on RFC 9421 Appendix B requests written
//! to files — accepted as published, refused (exit 1) once a covered component, the
//! signature or a signature parameter changes — and `sign` output that `verify` accepts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const VECTORS: &str = include_str!("../../tollgate-httpsig/tests/vectors/rfc9421_vectors.json");
/// The vectors' `created`, and a `now` ten seconds later.
const CREATED: i64 = 1_618_884_473;
const NOW: &str = "1618884483";

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn field(v: &Value, case: &str, name: &str) -> String {
    v["cases"][case][name].as_str().unwrap().to_owned()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let v = vectors();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        // The PEM holds the public and the private key; each command takes its block.
        write(
            "ed25519.pem",
            v["keys"]["test-key-ed25519"]["pem"].as_str().unwrap(),
        );
        write(
            "secret.b64",
            &format!(
                "{}\n",
                v["keys"]["test-shared-secret"]["base64"].as_str().unwrap()
            ),
        );
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the vectors' test request with `case`'s signature fields, after `edit`.
    fn signed_request(&self, case: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let v = vectors();
        let plain = v["messages"]["test-request"].as_str().unwrap();
        let (head, body) = plain.split_once("\n\n").unwrap();
        let text = format!(
            "{head}\nSignature-Input: {}\nSignature: {}\n\n{body}",
            field(&v, case, "Signature-Input"),
            field(&v, case, "Signature")
        );
        let path = self.path(&format!("{case}.http"));
        std::fs::write(&path, edit(text)).unwrap();
        path
    }
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .unwrap()
}

fn verify(request: &Path, key: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "httpsig",
        "verify",
        "--request",
        request.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--now",
        NOW,
    ];
    args.extend_from_slice(extra);
    tollgate(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_accepted(o: &Output, label: &str) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    assert!(
        stdout(o).contains(&format!("{label}: verified")),
        "{}",
        stdout(o)
    );
}

fn assert_refused(o: &Output, reason: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    assert!(stderr(o).contains(reason), "stderr:\n{}", stderr(o));
}

#[test]
fn accepts_the_published_ed25519_and_hmac_examples() {
    let f = Files::new();
    let o = verify(
        &f.signed_request("sig-b26", |t| t),
        &f.path("ed25519.pem"),
        &[],
    );
    assert_accepted(&o, "sig-b26");
    let out = stdout(&o);
    assert!(
        out.contains(
            r#"covered: "date" "@method" "@path" "@authority" "content-type" "content-length""#
        ),
        "{out}"
    );
    assert!(
        out.contains("created: 1618884473 (10 s before now)"),
        "{out}"
    );
    // B.2.6 leaves the query and the body unsigned: the gateway would refuse it.
    assert!(
        out.contains("gateway policy: FAIL: signature does not cover required component @query"),
        "{out}"
    );

    let o = verify(
        &f.signed_request("sig-b25", |t| t),
        &f.path("secret.b64"),
        &["--alg", "hmac-sha256"],
    );
    assert_accepted(&o, "sig-b25");
    assert!(stdout(&o).contains("(hmac-sha256, keyid \"test-shared-secret\")"));

    // The secret as raw bytes.
    let v = vectors();
    let raw_secret = base64_decode(v["keys"]["test-shared-secret"]["base64"].as_str().unwrap());
    std::fs::write(f.path("secret.bin"), raw_secret).unwrap();
    let o = verify(
        &f.signed_request("sig-b25", |t| t),
        &f.path("secret.bin"),
        &["--key-format", "raw"],
    );
    assert_accepted(&o, "sig-b25");
}

#[test]
fn refuses_a_changed_covered_component() {
    let f = Files::new();
    let date = |t: String| t.replacen("02:07:55", "02:07:56", 1);
    let o = verify(
        &f.signed_request("sig-b26", date),
        &f.path("ed25519.pem"),
        &[],
    );
    assert_refused(&o, "signature sig-b26 does not verify");
    assert!(stdout(&o).contains("sig-b26: NOT verified"));

    let method = |t: String| t.replacen("POST /foo", "PUT /foo", 1);
    let o = verify(
        &f.signed_request("sig-b26", method),
        &f.path("ed25519.pem"),
        &[],
    );
    assert_refused(&o, "does not verify");

    let host = |t: String| t.replacen("Host: example.com", "Host: example.net", 1);
    let o = verify(
        &f.signed_request("sig-b25", host),
        &f.path("secret.b64"),
        &["--alg", "hmac-sha256"],
    );
    assert_refused(&o, "signature sig-b25 does not verify");
}

#[test]
fn refuses_a_changed_signature_or_parameter() {
    let f = Files::new();
    let v = vectors();
    let sig = field(&v, "sig-b26", "Signature");
    let flipped = sig.replacen("wqcAqbmY", "wqcAqbmZ", 1);
    let o = verify(
        &f.signed_request("sig-b26", |t| t.replacen(&sig, &flipped, 1)),
        &f.path("ed25519.pem"),
        &[],
    );
    assert_refused(&o, "does not verify");

    for edit in [
        ("created=1618884473", "created=1618884474"),
        ("keyid=\"test-key-ed25519\"", "keyid=\"test-key-ed25518\""),
        (
            "created=1618884473",
            "created=1618884473;expires=1618884999",
        ),
    ] {
        let o = verify(
            &f.signed_request("sig-b26", |t| t.replacen(edit.0, edit.1, 1)),
            &f.path("ed25519.pem"),
            &[],
        );
        assert_refused(&o, "does not verify");
    }

    let o = verify(
        &f.signed_request("sig-b25", |t| {
            t.replacen("created=1618884473", "created=1", 1)
        }),
        &f.path("secret.b64"),
        &["--alg", "hmac-sha256"],
    );
    assert_refused(&o, "does not verify");

    // The wrong key type for the signature's alg.
    let o = verify(
        &f.signed_request("sig-b26", |t| {
            t.replacen(
                "keyid=\"test-key-ed25519\"",
                "keyid=\"test-key-ed25519\";alg=\"hmac-sha256\"",
                1,
            )
        }),
        &f.path("ed25519.pem"),
        &[],
    );
    assert_refused(&o, "algorithm mismatch");
}

#[test]
fn prints_json_for_scripts() {
    let f = Files::new();
    let o = verify(
        &f.signed_request("sig-b26", |t| t),
        &f.path("ed25519.pem"),
        &["--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["verified"], true);
    let s = &doc["signatures"][0];
    assert_eq!(s["label"], "sig-b26");
    assert_eq!(s["alg"], "ed25519");
    assert_eq!(s["keyid"], "test-key-ed25519");
    assert_eq!(s["created"], CREATED);
    assert_eq!(s["covered"][1], "\"@method\"");
    assert_eq!(s["policy"]["pass"], false);
    assert_eq!(s["policy"]["error"]["code"], "signature-component-required");

    let o = verify(
        &f.signed_request("sig-b26", |t| t.replacen("POST", "GET", 1)),
        &f.path("ed25519.pem"),
        &["--json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["verified"], false);
    assert_eq!(doc["signatures"][0]["error"]["code"], "signature-invalid");
}

#[test]
fn signs_what_verify_accepts() {
    let f = Files::new();
    let v = vectors();
    let plain = f.path("plain.http");
    std::fs::write(&plain, v["messages"]["test-request"].as_str().unwrap()).unwrap();

    // Ed25519 is deterministic: B.2.6's components and parameters give B.2.6's signature.
    let o = tollgate(&[
        "httpsig",
        "sign",
        "--request",
        plain.to_str().unwrap(),
        "--key",
        f.path("ed25519.pem").to_str().unwrap(),
        "--alg",
        "ed25519",
        "--keyid",
        "test-key-ed25519",
        "--created",
        "1618884473",
        "--label",
        "sig-b26",
        "--components",
        "date,@method,@path,@authority,content-type,content-length",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "Signature: {}\n",
            field(&v, "sig-b26", "Signature")
        )),
        "{out}"
    );
    assert!(out.ends_with("\n\n{\"hello\": \"world\"}"), "{out}");

    // Default components (the gateway's), a nonce, HMAC; then verify with its policy.
    let body_only = f.path("body.http");
    std::fs::write(
        &body_only,
        "PUT /v1/items/7?dry=1 HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"n\": 1}\n",
    )
    .unwrap();
    let o = tollgate(&[
        "httpsig",
        "sign",
        "--request",
        body_only.to_str().unwrap(),
        "--key",
        f.path("secret.b64").to_str().unwrap(),
        "--alg",
        "hmac-sha256",
        "--keyid",
        "app-1",
        "--created",
        "1618884473",
        "--nonce",
        "abc123",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("\r\nContent-Digest: sha-256=:"), "{out}");
    assert!(
        out.contains(r#"Signature-Input: sig1=("@method" "@authority" "@path" "@query" "content-digest");created=1618884473;nonce="abc123";keyid="app-1""#),
        "{out}"
    );
    let signed = f.path("signed.http");
    std::fs::write(&signed, &o.stdout).unwrap();
    let o = verify(&signed, &f.path("secret.b64"), &["--alg", "hmac-sha256"]);
    assert_accepted(&o, "sig1");
    assert!(
        stdout(&o).contains("gateway policy: pass"),
        "{}",
        stdout(&o)
    );

    // Too old for the policy, still cryptographically valid (exit 0).
    let o = verify(
        &signed,
        &f.path("secret.b64"),
        &["--alg", "hmac-sha256", "--max-age", "5"],
    );
    assert_accepted(&o, "sig1");
    assert!(
        stdout(&o).contains("gateway policy: FAIL: signature created at"),
        "{}",
        stdout(&o)
    );

    // A changed body no longer matches the signed digest.
    let tampered = String::from_utf8(std::fs::read(&signed).unwrap())
        .unwrap()
        .replacen("{\"n\": 1}", "{\"n\": 9}", 1);
    std::fs::write(&signed, tampered).unwrap();
    let o = verify(&signed, &f.path("secret.b64"), &["--alg", "hmac-sha256"]);
    assert_refused(&o, "body does not match Content-Digest");
}

#[test]
fn help_explains_the_commands() {
    let o = tollgate(&["httpsig", "verify", "--help"]);
    let out = stdout(&o);
    assert!(out.contains("Exits 0 when a signature verifies"), "{out}");
    assert!(out.contains("--key-format"), "{out}");
    let o = tollgate(&["httpsig", "sign", "--help"]);
    let out = stdout(&o);
    assert!(out.contains("Content-Digest"), "{out}");
    assert!(out.contains("--components"), "{out}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
