//! Field-level validation that reports every bad field at once, each addressed by a JSON
//! pointer (RFC 6901) into the request body.

use serde::Serialize;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON pointer to the field, e.g. `/upstreams/0`.
    pub pointer: String,
    /// What is wrong with it, in plain words.
    pub detail: String,
}

/// A collector of field errors; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the field at `pointer` is invalid.
    pub fn push(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        self.0.push(FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        });
    }

    /// `Ok(())` if nothing was recorded, else every recorded error.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Escapes one reference token of a JSON pointer (RFC 6901 §3).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A slug: 1–63 characters of lowercase ASCII letters, digits and `-`, starting with a
/// letter or digit. Slugs name objects in URLs, files and `tollgate apply`.
pub fn check_slug(errors: &mut FieldErrors, pointer: &str, slug: &str) {
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !ok {
        errors.push(
            pointer,
            "must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'",
        );
    }
}

/// A display name: non-blank, at most `max` characters, no control characters.
pub fn check_name(errors: &mut FieldErrors, pointer: &str, name: &str, max: usize) {
    if name.trim().is_empty() {
        errors.push(pointer, "must not be blank");
    } else if name.chars().count() > max {
        errors.push(pointer, format!("must be at most {max} characters"));
    } else if name.chars().any(char::is_control) {
        errors.push(pointer, "must not contain control characters");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug_ok(s: &str) -> bool {
        let mut e = FieldErrors::new();
        check_slug(&mut e, "/slug", s);
        e.is_empty()
    }

    #[test]
    fn slugs() {
        for good in ["a", "acme", "acme-payments", "v2", "0x"] {
            assert!(slug_ok(good), "{good}");
        }
        for bad in ["", "-a", "a-", "Acme", "a_b", "a b", "é", &"a".repeat(64)] {
            assert!(!slug_ok(bad), "{bad}");
        }
    }

    #[test]
    fn pointer_tokens_escape() {
        assert_eq!(pointer_token("/pets/{id}"), "~1pets~1{id}");
        assert_eq!(pointer_token("a~b"), "a~0b");
    }
}
