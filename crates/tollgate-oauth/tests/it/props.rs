//! Property tests of the parsers: round trips, and no panic on any input.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use tollgate_oauth::{Alg, Form, form_decode, parse_client_secret_basic};

use crate::*;

/// `application/x-www-form-urlencoded` encoding: unreserved bytes as they are, space as
/// `+`, everything else `%XX`.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

proptest! {
    #[test]
    fn form_decoding_inverts_encoding(text in any::<String>()) {
        let encoded = form_encode(&text);
        let decoded = form_decode(&encoded);
        prop_assert_eq!(decoded.as_deref(), Some(text.as_str()));
    }

    #[test]
    fn basic_credentials_round_trip(id in ".{1,40}", secret in ".{1,60}") {
        let header = format!("Basic {}", STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret))));
        let creds = parse_client_secret_basic(&header).unwrap();
        prop_assert_eq!(&creds.client_id, &id);
        prop_assert_eq!(creds.client_secret.as_str(), secret.as_str());
    }

    #[test]
    fn forms_never_panic(body in any::<String>()) {
        if let Ok(form) = Form::parse(&body) {
            let _ = form.get("grant_type");
        }
    }

    #[test]
    fn verification_never_panics_and_never_accepts_noise(
        token in "[A-Za-z0-9_.=-]{0,300}",
        cut in 0usize..400,
        flip in any::<u8>(),
    ) {
        let k = key(Alg::EdDSA, "k");
        let verifier = verifier(&[&k]);
        prop_assert!(verifier.verify(&token, NOW).is_err());
        // A real token, cut short or with one byte changed, never verifies.
        let good = claims().issue(&k, ISS, AUD).unwrap();
        let mut bytes = good.clone().into_bytes();
        if cut < bytes.len() {
            bytes[cut] ^= flip.max(1) & 0x3f;
            if let Ok(changed) = String::from_utf8(bytes)
                && changed != good
            {
                prop_assert!(verifier.verify(&changed, NOW).is_err());
            }
            prop_assert!(verifier.verify(&good[..cut], NOW).is_err());
        }
    }
}
