//! operationIds: which explicit ids are accepted, and the rule that derives an id for an
//! operation that has none.
//!
//! Accepted: one or more ASCII letters, digits, `_`, `.` or `-` (`^[A-Za-z0-9_.-]+$`),
//! compared case-sensitively as OpenAPI says. These ids end up in URLs, metric labels and
//! term sheets, so spaces, slashes and non-ASCII text are refused rather than escaped.
//!
//! Derived: the lower-case method, then for each path segment `_` and the literal text,
//! or `_by_` and the parameter name, with any character outside the accepted set replaced
//! by `_`; the root path `/` gives `{method}_root`. So `GET /pets/{petId}/toys` becomes
//! `get_pets_by_petId_toys`. A derived id that is already taken (by an explicit id, or by
//! an earlier derived one) gets the first free suffix `_2`, `_3`, …; derived ids are
//! assigned in (path, method) order so the outcome does not depend on key order.

use tollgate_core::path_template::{PathTemplate, Segment};

/// Why an explicit operationId is refused, or `None` if it is fine.
pub(crate) fn problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("must not be empty")
    } else if !id.chars().all(allowed) {
        Some("may contain only ASCII letters, digits, '_', '.' and '-'")
    } else {
        None
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The id derived from `method` (lower-case) and `template`, before collision suffixes.
pub(crate) fn derive(method: &str, template: &PathTemplate) -> String {
    let mut id = method.to_ascii_lowercase();
    if template.segments().is_empty() {
        id.push_str("_root");
    }
    for segment in template.segments() {
        let text = match segment {
            Segment::Literal(text) => {
                id.push('_');
                text
            }
            Segment::Param(name) => {
                id.push_str("_by_");
                name
            }
        };
        id.extend(text.chars().map(|c| if allowed(c) { c } else { '_' }));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, template: &str, expected: &str) {
        let t = PathTemplate::parse(template).unwrap();
        let id = derive(method, &t);
        assert_eq!(id, expected, "{method} {template}");
        assert_eq!(
            problem(&id),
            None,
            "derived id {id:?} must itself be acceptable"
        );
    }

    #[test]
    fn derivation() {
        check("get", "/", "get_root");
        check("get", "/pets", "get_pets");
        check("get", "/pets/{id}", "get_pets_by_id");
        check("delete", "/pets/{petId}/toys/", "delete_pets_by_petId_toys");
        check(
            "post",
            "/v1/pet-store/items.json",
            "post_v1_pet-store_items.json",
        );
        check("put", "/caf\u{e9}/{a b}", "put_caf__by_a_b");
        check("patch", "/a:b/{x$y}", "patch_a_b_by_x_y");
    }

    #[test]
    fn explicit_ids() {
        for good in ["listPets", "pets.list", "get_pet-2", "A"] {
            assert_eq!(problem(good), None, "{good}");
        }
        assert_eq!(problem(""), Some("must not be empty"));
        for bad in ["list pets", "pets/list", "caf\u{e9}", "a:b", "{id}"] {
            assert!(problem(bad).is_some(), "{bad}");
        }
    }
}
