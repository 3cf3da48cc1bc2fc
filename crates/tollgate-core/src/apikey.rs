//! The format of consumer API keys: `tg_live_…` / `tg_test_…`, then 22 base62 characters
//! of 128 random bits and a 6-character base62 CRC-32 of everything before it.
//!
//! The fixed prefix and the checksum let secret scanners (and the gateway, before any
//! lookup) recognise a Tollgate key offline and reject typos and truncations; the mode
//! in the prefix keeps live keys away from test traffic. Keys are stored only as keyed
//! hashes; this module never sees storage.

use std::fmt;

/// Whether a key reaches live or test subscriptions.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    #[default]
    Live,
    Test,
}

impl KeyMode {
    /// `live` or `test`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyMode::Live => "live",
            KeyMode::Test => "test",
        }
    }

    /// Whether this is the default mode (for `skip_serializing_if`).
    pub fn is_live(&self) -> bool {
        *self == KeyMode::Live
    }

    /// The key prefix of this mode.
    pub const fn prefix(self) -> &'static str {
        match self {
            KeyMode::Live => "tg_live_",
            KeyMode::Test => "tg_test_",
        }
    }
}

const BODY_LEN: usize = 22;
const CHECK_LEN: usize = 6;

/// Why a presented string is not a well-formed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Wrong prefix, length or characters.
    #[error("not a Tollgate API key (expected tg_live_… or tg_test_… of 36 characters)")]
    Malformed,
    /// Well-formed but the checksum does not match: a typo or a truncated copy.
    #[error("the API key's checksum does not match (a typo or an incomplete copy)")]
    BadChecksum,
}

/// A well-formed key (not yet known to be issued).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey<'a> {
    pub mode: KeyMode,
    /// The whole key text.
    pub text: &'a str,
}

impl fmt::Debug for ApiKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret: the prefix and the first characters identify it enough.
        write!(f, "ApiKey({}…)", &self.text[..self.text.len().min(12)])
    }
}

fn pad62(n: u128, width: usize) -> String {
    let s = base62::encode(n);
    format!("{}{s}", "0".repeat(width.saturating_sub(s.len())))
}

fn checksum(head: &str) -> String {
    pad62(u128::from(crc32fast::hash(head.as_bytes())), CHECK_LEN)
}

/// Formats a new key from 16 bytes of entropy (from a CSPRNG; this crate does no IO).
pub fn format(mode: KeyMode, entropy: [u8; 16]) -> String {
    let head = format!(
        "{}{}",
        mode.prefix(),
        pad62(u128::from_be_bytes(entropy), BODY_LEN)
    );
    let check = checksum(&head);
    head + &check
}

/// Checks a presented key's shape and checksum, without any lookup.
pub fn parse(text: &str) -> Result<ApiKey<'_>, KeyFormatError> {
    let mode = if text.starts_with(KeyMode::Live.prefix()) {
        KeyMode::Live
    } else if text.starts_with(KeyMode::Test.prefix()) {
        KeyMode::Test
    } else {
        return Err(KeyFormatError::Malformed);
    };
    let rest = &text[mode.prefix().len()..];
    if rest.len() != BODY_LEN + CHECK_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Malformed);
    }
    let (head, check) = text.split_at(text.len() - CHECK_LEN);
    if checksum(head) != check {
        return Err(KeyFormatError::BadChecksum);
    }
    Ok(ApiKey { mode, text })
}

/// The first characters of a key, safe to show and log (identifies it among an app's).
pub fn display_prefix(text: &str) -> &str {
    &text[..text.len().min(KeyMode::Live.prefix().len() + 4)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_have_the_documented_shape() {
        let k = format(KeyMode::Live, [7; 16]);
        assert_eq!(k.len(), 36);
        assert!(k.starts_with("tg_live_"));
        assert_eq!(parse(&k).unwrap().mode, KeyMode::Live);
        let t = format(KeyMode::Test, [0; 16]);
        assert!(t.starts_with("tg_test_0000000000000000000000"), "{t}");
        assert_eq!(parse(&t).unwrap().mode, KeyMode::Test);
        assert_eq!(display_prefix(&k).len(), 12);
        assert!(
            !format!("{:?}", parse(&k).unwrap()).contains(&k[12..]),
            "Debug hides the secret"
        );
    }

    #[test]
    fn malformed_keys_are_told_apart_from_typos() {
        let k = format(KeyMode::Live, [42; 16]);
        assert_eq!(parse("tgp_whatever"), Err(KeyFormatError::Malformed));
        assert_eq!(parse(&k[..35]), Err(KeyFormatError::Malformed), "truncated");
        assert_eq!(
            parse(&format!("{k}x")),
            Err(KeyFormatError::Malformed),
            "too long"
        );
        assert_eq!(
            parse(&k.replacen("tg_live_", "tg_prod_", 1)),
            Err(KeyFormatError::Malformed)
        );
        let bad: String = k
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 20 {
                    if c == 'a' { 'b' } else { 'a' }
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(parse(&bad), Err(KeyFormatError::BadChecksum));
    }

    proptest! {
        /// Every generated key parses; changing any one character of the body or checksum
        /// to another alphanumeric is detected.
        #[test]
        fn every_single_character_change_is_caught(entropy in any::<[u8; 16]>(), pos in 8usize..36, c in "[0-9A-Za-z]") {
            let k = format(KeyMode::Test, entropy);
            prop_assert!(parse(&k).is_ok());
            let c = c.chars().next().unwrap();
            prop_assume!(k.as_bytes()[pos] as char != c);
            let mut changed = k.clone().into_bytes();
            changed[pos] = c as u8;
            let changed = String::from_utf8(changed).unwrap();
            prop_assert_eq!(parse(&changed).map(|_| ()), Err(KeyFormatError::BadChecksum));
        }
    }
}
