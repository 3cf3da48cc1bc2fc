//! OpenAPI path templates (`/pets/{petId}/toys`): parsing, matching a request path, and
//! telling whether two templates would route the same requests. Shared by the OpenAPI
//! importer (which rejects ambiguous documents) and the gateway router.

use std::fmt;

/// One `/`-separated segment of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// `{name}`: matches any one non-empty segment.
    Param(String),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must start with '/'")]
    NoLeadingSlash,
    #[error("has an empty segment ('//')")]
    EmptySegment,
    #[error(
        "segment {0:?} mixes text and a {{parameter}} or has unbalanced braces; only whole-segment parameters are supported"
    )]
    BadParam(String),
    #[error("parameter {{{0}}} appears twice")]
    DuplicateParam(String),
    #[error("segment {0:?} contains characters not allowed in a path")]
    BadChar(String),
}

impl PathTemplate {
    /// Parses a template. `/` alone is the root; a trailing `/` is significant only as
    /// "the same as without" (it is dropped), mirroring how the gateway normalises paths.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let rest = s.strip_prefix('/').ok_or(TemplateError::NoLeadingSlash)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(Self { segments });
        }
        let mut names = Vec::new();
        for seg in rest.split('/') {
            if seg.is_empty() {
                return Err(TemplateError::EmptySegment);
            }
            if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if inner.is_empty() || inner.contains(['{', '}']) {
                    return Err(TemplateError::BadParam(seg.to_owned()));
                }
                if names.iter().any(|n| n == inner) {
                    return Err(TemplateError::DuplicateParam(inner.to_owned()));
                }
                names.push(inner.to_owned());
                segments.push(Segment::Param(inner.to_owned()));
            } else if seg.contains(['{', '}']) {
                return Err(TemplateError::BadParam(seg.to_owned()));
            } else if seg
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#')
            {
                return Err(TemplateError::BadChar(seg.to_owned()));
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(Self { segments })
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Names of the `{parameters}`, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Number of literal segments: more literals = more specific. The router prefers
    /// the template with more literals, then the earlier literal position.
    pub fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// Whether the two templates have the same shape (literals equal, parameters in the
    /// same places, names aside). OpenAPI forbids such pairs in one document.
    pub fn same_shape(&self, other: &Self) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    _ => false,
                })
    }

    /// Matches a request path (relative to the API's base path, starting with `/`,
    /// already percent-decoding-free: segments are compared as raw text). Returns the
    /// parameter values in order, borrowed from `path`.
    pub fn matches<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let rest = path.strip_prefix('/')?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut out = Vec::new();
        let mut parts = if rest.is_empty() {
            None
        } else {
            Some(rest.split('/'))
        };
        for seg in &self.segments {
            let part = parts.as_mut()?.next()?;
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) if !part.is_empty() => out.push((name.as_str(), part)),
                Segment::Param(_) => return None,
            }
        }
        match parts.as_mut().and_then(Iterator::next) {
            Some(_) => None,
            None => Some(out),
        }
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            match s {
                Segment::Literal(l) => write!(f, "/{l}")?,
                Segment::Param(p) => write!(f, "/{{{p}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(template: &str, path: &str, expected: Option<&[(&str, &str)]>) {
        let t = PathTemplate::parse(template).unwrap();
        assert_eq!(t.matches(path).as_deref(), expected, "{template} vs {path}");
    }

    #[test]
    fn matching() {
        check("/", "/", Some(&[]));
        check("/", "/x", None);
        check("/pets", "/pets", Some(&[]));
        check("/pets", "/pets/", Some(&[]));
        check("/pets", "/pets/1", None);
        check("/pets/{id}", "/pets/42", Some(&[("id", "42")]));
        check("/pets/{id}", "/pets", None);
        check("/pets/{id}", "/pets//", None);
        check(
            "/pets/{id}/toys/{toy}",
            "/pets/1/toys/ball",
            Some(&[("id", "1"), ("toy", "ball")]),
        );
        check("/pets/{id}/toys/{toy}", "/pets/1/toys", None);
        check("/a/{b}", "/a/b/c", None);
        check("/a", "a", None);
    }

    #[test]
    fn parsing_errors() {
        use TemplateError::*;
        assert_eq!(PathTemplate::parse("pets"), Err(NoLeadingSlash));
        assert_eq!(PathTemplate::parse("/a//b"), Err(EmptySegment));
        assert_eq!(PathTemplate::parse("/a/{}"), Err(BadParam("{}".into())));
        assert_eq!(
            PathTemplate::parse("/a/x{id}"),
            Err(BadParam("x{id}".into()))
        );
        assert_eq!(
            PathTemplate::parse("/a/{id}/{id}"),
            Err(DuplicateParam("id".into()))
        );
        assert_eq!(PathTemplate::parse("/a b"), Err(BadChar("a b".into())));
    }

    #[test]
    fn shapes_and_display() {
        let a = PathTemplate::parse("/pets/{id}").unwrap();
        let b = PathTemplate::parse("/pets/{petId}/").unwrap();
        let c = PathTemplate::parse("/pets/mine").unwrap();
        assert!(a.same_shape(&b));
        assert!(!a.same_shape(&c));
        assert_eq!(b.to_string(), "/pets/{petId}");
        assert_eq!(c.literal_count(), 2);
        assert_eq!(a.params().collect::<Vec<_>>(), ["id"]);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            "[a-z0-9._~-]{1,8}".prop_map(Segment::Literal),
            "[a-zA-Z][a-zA-Z0-9_]{0,6}".prop_map(Segment::Param),
        ]
    }

    proptest! {
        /// Display then parse gives the same template, and a path built from it by
        /// filling every parameter matches it with exactly those values.
        #[test]
        fn round_trip_and_match(segs in proptest::collection::vec(segment(), 0..6), value in "[a-zA-Z0-9-]{1,10}") {
            let mut names = std::collections::HashSet::new();
            let segs: Vec<Segment> = segs.into_iter().filter(|s| match s { Segment::Param(p) => names.insert(p.clone()), Segment::Literal(_) => true }).collect();
            let t = PathTemplate { segments: segs.clone() };
            let parsed = PathTemplate::parse(&t.to_string()).unwrap();
            prop_assert_eq!(&parsed, &t);
            let path: String = if segs.is_empty() { "/".into() } else {
                segs.iter().map(|s| match s { Segment::Literal(l) => format!("/{l}"), Segment::Param(_) => format!("/{value}") }).collect()
            };
            let m = t.matches(&path).expect("filled path matches");
            prop_assert_eq!(m.len(), t.params().count());
            prop_assert!(m.iter().all(|(_, v)| *v == value));
            // One more segment never matches.
            let longer = format!("{}/extra", path.trim_end_matches('/'));
            prop_assert!(t.matches(&longer).is_none());
        }

        /// Parsing never panics on arbitrary input.
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = PathTemplate::parse(&s);
        }
    }
}
