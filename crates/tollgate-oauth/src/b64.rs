//! base64url and the small serde helpers the token parsers share: borrowed strings,
//! NumericDate, and "this member is present".

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

use crate::{Error, Result};

/// base64url without padding (RFC 7515 §2), as every JWS part and JWK member is written.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends base64url of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes base64url without padding. The engine refuses padding, characters outside the
/// URL-safe alphabet and non-zero trailing bits, so each value has exactly one encoding.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes exactly `N` bytes.
pub(crate) fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    // Refuse long input before decoding it.
    if text.len() != (N * 4).div_ceil(3) {
        return None;
    }
    let mut out = [0u8; N];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(n) if n == N => Some(out),
        _ => None,
    }
}

/// Decodes `text` into a stack buffer of `N` bytes when it fits, else onto the heap, and
/// hands the bytes to `f`: token parts are decoded without allocating in the common case.
pub(crate) fn with_decoded<const N: usize, R>(
    text: &str,
    what: &'static str,
    f: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R> {
    if base64::decoded_len_estimate(text.len()) <= N {
        let mut buf = [0u8; N];
        let n = URL_SAFE_NO_PAD
            .decode_slice(text, &mut buf)
            .map_err(|_| Error::Malformed(what))?;
        f(&buf[..n])
    } else {
        let buf = decode(text).ok_or(Error::Malformed(what))?;
        f(&buf)
    }
}

/// A JSON string borrowed from the input when it has no escapes, owned otherwise.
/// (serde borrows `Cow<str>` only for fields marked `borrow`, hence the newtype.)
#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub(crate) struct Str<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Deserializes a JSON object. serde's derived structs also accept an array of the
/// members' values in order; JOSE headers, claims sets and JWKs are objects only, so
/// anything but an object is refused first.
pub(crate) fn from_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    if first != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// `deserialize_with` for an optional NumericDate (RFC 7519 §2): seconds since the epoch.
/// Integers are taken as they are; fractional values are floored, since other
/// implementations may write them. Anything else is an error.
pub(crate) fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a NumericDate")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("date out of range"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // Beyond ±2^53 a float no longer names whole seconds; dates that far out are
            // nonsense anyway.
            const LIMIT: f64 = 9_007_199_254_740_992.0;
            if v.is_finite() && v.abs() < LIMIT {
                Ok(Some(v.floor() as i64))
            } else {
                Err(E::custom("date out of range"))
            }
        }
    }
    d.deserialize_any(V)
}

/// `deserialize_with` that records only that a member is present, whatever its value.
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// Whether a raw JSON `aud` value — a string or an array of strings (RFC 7519 §4.1.3) —
/// contains one of `expected`. Reads the value in place, collecting nothing.
pub(crate) fn aud_contains(raw: &serde_json::value::RawValue, expected: &[&str]) -> Result<bool> {
    struct AnyOf<'e>(&'e [&'e str]);
    impl<'de> Visitor<'de> for AnyOf<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            Ok(self.0.contains(&v))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut found = false;
            // Every element must be a string, even after a match.
            while let Some(s) = seq.next_element::<Str<'de>>()? {
                found |= self.0.contains(&&*s);
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let text = raw.get().as_bytes();
    let found = if text.first() == Some(&b'[') {
        de::Deserializer::deserialize_seq(&mut de, AnyOf(expected))
    } else {
        // A string: borrowed if it has no escapes, decoded otherwise.
        Str::deserialize(&mut de).map(|s| expected.contains(&&*s))
    };
    found.map_err(|_| Error::Malformed("aud is not a string or an array of strings"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let plain: Str<'_> = serde_json::from_str(r#""at+jwt""#).unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("at+jwt")));
        let escaped: Str<'_> = serde_json::from_str(r#""at\u002bjwt""#).unwrap();
        assert!(matches!(escaped.0, Cow::Owned(ref s) if s == "at+jwt"));
    }

    #[test]
    fn numeric_dates_accept_integers_and_floor_fractions() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "numeric_date")]
            t: Option<i64>,
        }
        let check = |json: &str, expected: Option<Option<i64>>| {
            let got = serde_json::from_str::<T>(json).ok().map(|t| t.t);
            assert_eq!(got, expected, "{json}");
        };
        check(r#"{"t": 1767225600}"#, Some(Some(1_767_225_600)));
        check(r#"{"t": 1767225600.9}"#, Some(Some(1_767_225_600)));
        check(r#"{"t": -1.5}"#, Some(Some(-2)));
        check(r#"{}"#, Some(None));
        check(r#"{"t": "1767225600"}"#, None);
        check(r#"{"t": 1e300}"#, None);
        check(r#"{"t": 18446744073709551615}"#, None);
        check(r#"{"t": null}"#, None);
    }

    #[test]
    fn aud_matches_strings_and_arrays_of_strings() {
        let check = |json: &str, expected: Result<bool>| {
            let raw: Box<serde_json::value::RawValue> = serde_json::from_str(json).unwrap();
            assert_eq!(aud_contains(&raw, &["a", "b"]), expected, "{json}");
        };
        check(r#""a""#, Ok(true));
        check(r#""\u0062""#, Ok(true));
        check(r#""c""#, Ok(false));
        check(r#"["c", "b"]"#, Ok(true));
        check(r#"[]"#, Ok(false));
        check(r#"["c"]"#, Ok(false));
        check(
            r#"["a", 1]"#,
            Err(Error::Malformed(
                "aud is not a string or an array of strings",
            )),
        );
        check(
            r#"1"#,
            Err(Error::Malformed(
                "aud is not a string or an array of strings",
            )),
        );
        check(
            r#"{"a": 1}"#,
            Err(Error::Malformed(
                "aud is not a string or an array of strings",
            )),
        );
        check(
            r#"null"#,
            Err(Error::Malformed(
                "aud is not a string or an array of strings",
            )),
        );
    }

    #[test]
    fn base64url_is_canonical() {
        assert_eq!(decode("AQI"), Some(vec![1, 2]));
        assert_eq!(decode("AQI="), None, "padding");
        assert_eq!(decode("AQJ"), None, "non-zero trailing bits");
        assert_eq!(decode("A+I"), None, "standard alphabet");
        assert_eq!(decode_array::<2>("AQI"), Some([1, 2]));
        assert_eq!(decode_array::<3>("AQI"), None);
        let long = "A".repeat(100);
        assert_eq!(
            with_decoded::<8, usize>(&long, "x", |b| Ok(b.len())),
            Ok(75),
            "falls back to the heap"
        );
        assert_eq!(with_decoded::<8, usize>("AQI", "x", |b| Ok(b.len())), Ok(2));
        assert_eq!(
            with_decoded::<8, usize>("A", "x", |b| Ok(b.len())),
            Err(Error::Malformed("x"))
        );
    }
}
