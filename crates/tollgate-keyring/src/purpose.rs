//! What each key is for, which algorithm that implies, and how long it outlives rotation.

use std::fmt;
use std::str::FromStr;
use time::Duration;

use crate::Error;

/// What a key is for. Each purpose has exactly one active key at a time, a fixed
/// [`KeyAlgorithm`] and a default rotation overlap.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// Signs ledger checkpoints (C2SP signed notes).
    CheckpointSigning,
    /// Signs finalized invoices and credit notes.
    InvoiceSigning,
    /// Signs acceptance records (a subscription accepted a term sheet hash).
    AcceptanceSigning,
    /// Signs OAuth / JWT access tokens; the public parts form the JWKS.
    TokenSigning,
    /// Signs the assertion the gateway attaches to requests it forwards upstream.
    GatewayAssertion,
    /// The HMAC secret that signs outgoing webhooks (Standard Webhooks `whsec_`).
    WebhookSecret,
    /// The key-encryption key for envelope encryption of data at rest.
    DataEncryption,
}

impl KeyPurpose {
    /// Every purpose, in declaration order.
    pub const ALL: [KeyPurpose; 7] = [
        Self::CheckpointSigning,
        Self::InvoiceSigning,
        Self::AcceptanceSigning,
        Self::TokenSigning,
        Self::GatewayAssertion,
        Self::WebhookSecret,
        Self::DataEncryption,
    ];

    /// The snake_case name, as in serde and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CheckpointSigning => "checkpoint_signing",
            Self::InvoiceSigning => "invoice_signing",
            Self::AcceptanceSigning => "acceptance_signing",
            Self::TokenSigning => "token_signing",
            Self::GatewayAssertion => "gateway_assertion",
            Self::WebhookSecret => "webhook_secret",
            Self::DataEncryption => "data_encryption",
        }
    }

    /// The algorithm every key of this purpose uses.
    pub const fn algorithm(self) -> KeyAlgorithm {
        match self {
            Self::CheckpointSigning
            | Self::InvoiceSigning
            | Self::AcceptanceSigning
            | Self::TokenSigning
            | Self::GatewayAssertion => KeyAlgorithm::Ed25519,
            Self::WebhookSecret => KeyAlgorithm::HmacSha256,
            Self::DataEncryption => KeyAlgorithm::Aes256Gcm,
        }
    }

    /// How long a rotated-out key keeps verifying or decrypting; `None` means it never
    /// retires on its own.
    ///
    /// - Signing keys: 7 days. Tokens and gateway assertions live minutes to hours and JWKS
    ///   or verifier-key caches refresh within a day, so a week covers every cache and clock
    ///   skew with room to spare. Old checkpoints, invoices and acceptance records are
    ///   checked long after that, but against the archived public key of the retired
    ///   record (see [`verify_ed25519`](crate::verify_ed25519)), not through the keyring.
    /// - Webhook secret: 30 days. Receivers must copy the new secret into their own
    ///   configuration; during the overlap both secrets sign each delivery.
    /// - Data encryption: never. Data sealed under an old key must stay readable until it
    ///   is re-encrypted, which the keyring cannot know about.
    ///
    /// After a compromise, rotate with an explicit overlap of [`Duration::ZERO`] instead.
    pub const fn default_overlap(self) -> Option<Duration> {
        match self.algorithm() {
            KeyAlgorithm::Ed25519 => Some(Duration::days(7)),
            KeyAlgorithm::HmacSha256 => Some(Duration::days(30)),
            KeyAlgorithm::Aes256Gcm => None,
        }
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyPurpose {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::UnknownPurpose(s.to_owned()))
    }
}

/// The algorithm of a key, implied by its purpose and stored alongside it so a record is
/// self-describing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    /// Ed25519 signatures; the secret is a PKCS#8 v2 document, the public key 32 raw bytes.
    Ed25519,
    /// HMAC-SHA-256 over a 32-byte random secret.
    HmacSha256,
    /// AES-256-GCM with a 32-byte random key, used as a key-encryption key.
    Aes256Gcm,
}

impl KeyAlgorithm {
    /// The snake_case name, as in serde and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::HmacSha256 => "hmac_sha256",
            Self::Aes256Gcm => "aes256_gcm",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_names_round_trip_through_text_and_serde() {
        for purpose in KeyPurpose::ALL {
            assert_eq!(purpose.as_str().parse::<KeyPurpose>().unwrap(), purpose);
            let json = serde_json::to_string(&purpose).unwrap();
            assert_eq!(json, format!("\"{}\"", purpose.as_str()));
            assert_eq!(serde_json::from_str::<KeyPurpose>(&json).unwrap(), purpose);
        }
        assert!(matches!(
            "token-signing".parse::<KeyPurpose>(),
            Err(Error::UnknownPurpose(s)) if s == "token-signing"
        ));
    }

    #[test]
    fn algorithm_names_match_serde() {
        for algorithm in [
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::HmacSha256,
            KeyAlgorithm::Aes256Gcm,
        ] {
            let json = serde_json::to_string(&algorithm).unwrap();
            assert_eq!(json, format!("\"{}\"", algorithm.as_str()));
        }
    }

    #[test]
    fn purposes_have_the_documented_algorithms_and_overlaps() {
        use KeyPurpose::*;
        let cases = [
            (CheckpointSigning, KeyAlgorithm::Ed25519, Some(7)),
            (InvoiceSigning, KeyAlgorithm::Ed25519, Some(7)),
            (AcceptanceSigning, KeyAlgorithm::Ed25519, Some(7)),
            (TokenSigning, KeyAlgorithm::Ed25519, Some(7)),
            (GatewayAssertion, KeyAlgorithm::Ed25519, Some(7)),
            (WebhookSecret, KeyAlgorithm::HmacSha256, Some(30)),
            (DataEncryption, KeyAlgorithm::Aes256Gcm, None),
        ];
        for (purpose, algorithm, days) in cases {
            assert_eq!(purpose.algorithm(), algorithm, "{purpose}");
            assert_eq!(
                purpose.default_overlap(),
                days.map(Duration::days),
                "{purpose}"
            );
        }
    }
}
