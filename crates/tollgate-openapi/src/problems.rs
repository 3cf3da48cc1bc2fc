//! The error collector behind [`crate::import`]: de-duplicated and capped, so a hopeless
//! document yields a readable list rather than thousands of entries.

use tollgate_core::validate::{FieldError, FieldErrors, pointer_token};

/// The most problems one import reports. When there are more, the last slot says so.
pub const MAX_ERRORS: usize = 100;

/// Collects [`FieldError`]s up to [`MAX_ERRORS`].
#[derive(Debug, Default)]
pub(crate) struct Problems {
    errors: FieldErrors,
    truncated: bool,
}

impl Problems {
    /// Records a problem at `pointer`, unless the same one is already recorded (a shared
    /// `$ref`'d parameter must not be reported once per use) or the cap is reached.
    pub(crate) fn push(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        let error = FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        };
        if self.errors.0.contains(&error) {
            return;
        }
        if self.errors.0.len() < MAX_ERRORS {
            self.errors.0.push(error);
        } else {
            self.truncated = true;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every recorded problem, in the order found. A truncated list ends with a note at
    /// the document root in place of its last entry.
    pub(crate) fn into_errors(mut self) -> Vec<FieldError> {
        if self.truncated {
            self.errors.0.truncate(MAX_ERRORS - 1);
            self.errors.push(
                "",
                format!(
                    "more problems were found; only the first {} are listed",
                    MAX_ERRORS - 1
                ),
            );
        }
        self.errors.0
    }
}

/// `base` extended by one reference token, escaped per RFC 6901.
pub(crate) fn join(base: &str, token: &str) -> String {
    format!("{base}/{}", pointer_token(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_dropped_and_the_list_is_capped() {
        let mut p = Problems::default();
        p.push("/a", "x");
        p.push("/a", "x");
        p.push("/a", "y");
        assert_eq!(p.errors.0.len(), 2);
        for i in 0..MAX_ERRORS * 2 {
            p.push(format!("/{i}"), "z");
        }
        let errors = p.into_errors();
        assert_eq!(errors.len(), MAX_ERRORS);
        assert_eq!(errors[0].pointer, "/a");
        assert_eq!(errors[MAX_ERRORS - 1].pointer, "");
        assert!(errors[MAX_ERRORS - 1].detail.contains("first 99"));
    }

    #[test]
    fn exactly_the_cap_is_not_truncated() {
        let mut p = Problems::default();
        for i in 0..MAX_ERRORS {
            p.push(format!("/{i}"), "z");
        }
        let errors = p.into_errors();
        assert_eq!(errors.len(), MAX_ERRORS);
        assert_eq!(
            errors[MAX_ERRORS - 1].pointer,
            format!("/{}", MAX_ERRORS - 1)
        );
    }

    #[test]
    fn join_escapes() {
        assert_eq!(join("/paths", "/pets/{id}"), "/paths/~1pets~1{id}");
        assert_eq!(join("", "a~b"), "/a~0b");
    }
}
