//! Local `$ref`s: `#`-fragments holding percent-encoded JSON pointers into the same
//! document. Remote references are never followed (the crate does no IO).

use serde_json::Value;

/// How many `$ref` hops one lookup may take before we call it a loop.
pub(crate) const MAX_REF_HOPS: usize = 16;

/// The JSON pointer a local reference such as `#/components/schemas/Pet` names, or
/// `None` for a remote reference or invalid percent-encoding.
pub(crate) fn local_pointer(reference: &str) -> Option<String> {
    percent_decode(reference.strip_prefix('#')?)
}

/// The longest reference [`target`] follows. Each use of a reference decodes it again, so
/// without a cap one huge reference used many times would cost time quadratic in the size
/// of the document.
pub(crate) const MAX_REF_LEN: usize = 1024;

/// The value a local reference names, with its pointer.
pub(crate) fn target<'d>(doc: &'d Value, reference: &str) -> Option<(&'d Value, String)> {
    if reference.len() > MAX_REF_LEN {
        return None;
    }
    let pointer = local_pointer(reference)?;
    Some((doc.pointer(&pointer)?, pointer))
}

/// Follows `$ref`s from `value` (found at `pointer`) to a value that is not a reference,
/// returning it with its pointer. `None` when a reference is not a string, remote,
/// dangling, cyclic or more than [`MAX_REF_HOPS`] deep. Nothing is reported: the callers
/// are lenient consumers of documents that [`crate::import`] has already checked.
pub(crate) fn follow<'d>(
    doc: &'d Value,
    value: &'d Value,
    pointer: String,
) -> Option<(&'d Value, String)> {
    let mut current = (value, pointer);
    for _ in 0..=MAX_REF_HOPS {
        let Some(reference) = current.0.as_object().and_then(|o| o.get("$ref")) else {
            return Some(current);
        };
        current = target(doc, reference.as_str()?)?;
    }
    None
}

/// Decodes `%XX` escapes in a URI fragment; `None` if an escape or the result is invalid.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a/b").as_deref(), Some("/a/b"));
        assert_eq!(
            percent_decode("/p/~1x~1%7Bid%7D").as_deref(),
            Some("/p/~1x~1{id}")
        );
        assert_eq!(percent_decode("/caf%C3%A9").as_deref(), Some("/caf\u{e9}"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/a%+1"), None);
        assert_eq!(percent_decode("/a%zz"), None);
        assert_eq!(percent_decode("/a%FF"), None);
    }

    #[test]
    fn following() {
        let doc = json!({
            "a": { "$ref": "#/b" },
            "b": { "$ref": "#/c" },
            "c": { "x": 1 },
            "loop1": { "$ref": "#/loop2" },
            "loop2": { "$ref": "#/loop1" },
            "remote": { "$ref": "other.yaml#/c" },
            "dangling": { "$ref": "#/nothing" },
            "number": { "$ref": 5 },
            "long": { "$ref": format!("#/{}", "x".repeat(MAX_REF_LEN)) },
        });
        let at = |p: &str| follow(&doc, doc.pointer(p).unwrap(), p.to_owned());
        assert_eq!(at("/a"), Some((&json!({ "x": 1 }), "/c".to_owned())));
        assert_eq!(at("/c"), Some((&json!({ "x": 1 }), "/c".to_owned())));
        for broken in ["/loop1", "/remote", "/dangling", "/number", "/long"] {
            assert_eq!(at(broken), None, "{broken}");
        }
    }
}
