//! Best-effort mapping from a field path (`apis[1].base_path`) to the line that holds it,
//! for errors found after parsing, when the parser's own position is gone. It reads the
//! text line by line rather than re-parsing, so it copes with files that are valid but
//! unusual only as well as a person skimming them would; when unsure it returns `None`.

use std::fmt;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `apis[1].hosts[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub(crate) fn entity(list: &str, index: usize) -> Self {
        FieldPath(vec![Seg::Key(list.to_owned()), Seg::Index(index)])
    }

    pub(crate) fn key(mut self, key: &str) -> Self {
        self.0.push(Seg::Key(key.to_owned()));
        self
    }

    #[cfg(test)]
    pub(crate) fn index(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }

    /// Appends a dotted field path from the term sheet crate, e.g.
    /// `limits.quota[0].requests`.
    pub(crate) fn dotted(mut self, field: &str) -> Self {
        for part in field.split('.').filter(|p| !p.is_empty()) {
            let (name, rest) = part.split_once('[').unwrap_or((part, ""));
            if !name.is_empty() {
                self.0.push(Seg::Key(name.to_owned()));
            }
            for idx in rest.split('[').filter(|s| !s.is_empty()) {
                let idx = idx.trim_end_matches(']');
                match idx.parse::<usize>() {
                    Ok(i) => self.0.push(Seg::Index(i)),
                    Err(_) => self.0.push(Seg::Key(idx.to_owned())),
                }
            }
        }
        self
    }

    /// Appends a JSON pointer from core validation, e.g. `/hosts/0`.
    pub(crate) fn pointer(mut self, pointer: &str) -> Self {
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            match token.parse::<usize>() {
                Ok(i) => self.0.push(Seg::Index(i)),
                Err(_) => self.0.push(Seg::Key(token)),
            }
        }
        self
    }

    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        let mut segs = Vec::new();
        for s in path.iter() {
            match s {
                serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    segs.push(Seg::Key(variant.clone()));
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        FieldPath(segs)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The file formats a manifest can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
    Json,
}

impl Format {
    /// The format a file name's extension says, if it is one Tollgate reads.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// The 1-based line of `path` in `text`, if it can be found.
pub(crate) fn locate(format: Format, text: &str, path: &FieldPath) -> Option<usize> {
    match format {
        Format::Yaml => locate_yaml(text, &path.0),
        Format::Toml => locate_toml(text, &path.0),
        Format::Json => None,
    }
}

/// 1-based line number of the byte offset `at` in `text`.
pub(crate) fn line_of_offset(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

// ------------------------------------------------------------------------------ YAML

struct YLine<'a> {
    /// Column of the first character that is not a space.
    indent: usize,
    /// Column of the mapping key on this line: after a `- ` sequence marker if any.
    key_col: usize,
    /// Text from `key_col` on.
    key_text: &'a str,
    /// Whether the line opens a sequence item.
    dash: bool,
}

fn yaml_line(raw: &str) -> Option<YLine<'_>> {
    let trimmed = raw.trim_start_matches(' ');
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.trim().is_empty() {
        return None;
    }
    let indent = raw.len() - trimmed.len();
    if trimmed == "-" || trimmed.starts_with("- ") {
        let after = trimmed[1..].trim_start_matches(' ');
        Some(YLine {
            indent,
            key_col: raw.len() - after.len(),
            key_text: after,
            dash: true,
        })
    } else {
        Some(YLine {
            indent,
            key_col: indent,
            key_text: trimmed,
            dash: false,
        })
    }
}

fn is_key(text: &str, key: &str) -> bool {
    let rest = text
        .strip_prefix(key)
        .or_else(|| text.strip_prefix(&format!("\"{key}\"")))
        .or_else(|| text.strip_prefix(&format!("'{key}'")));
    rest.is_some_and(|r| r.starts_with(':'))
}

/// Searches lines `[start, end)` (0-based) for `segs`, the first of which applies to the
/// node that begins at line `start` with its keys at column `col`.
fn locate_yaml(text: &str, segs: &[Seg]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let first = (0..lines.len()).find(|&i| yaml_line(lines[i]).is_some())?;
    let col = yaml_line(lines[first])?.key_col;
    yaml_in(&lines, first, lines.len(), col, segs).map(|l| l + 1)
}

fn yaml_in(lines: &[&str], start: usize, end: usize, col: usize, segs: &[Seg]) -> Option<usize> {
    let Some((seg, rest)) = segs.split_first() else {
        return Some(start);
    };
    match seg {
        Seg::Key(k) => {
            // A key of the mapping whose keys sit at `col`.
            let at = (start..end).find(|&i| {
                yaml_line(lines[i]).is_some_and(|l| l.key_col == col && is_key(l.key_text, k))
            })?;
            // The value runs until the next line at or left of `col`.
            let stop = (at + 1..end)
                .find(|&i| yaml_line(lines[i]).is_some_and(|l| l.indent < col || l.key_col <= col))
                .unwrap_or(end);
            if rest.is_empty() {
                return Some(at);
            }
            let Some(next) = (at + 1..stop).find(|&i| yaml_line(lines[i]).is_some()) else {
                // A flow value (`[a, b]`, `{..}`) on the key's own line.
                return Some(at);
            };
            let l = yaml_line(lines[next])?;
            let child_col = if matches!(rest[0], Seg::Index(_)) {
                l.indent
            } else {
                l.key_col
            };
            yaml_in(lines, next, stop, child_col, rest).or(Some(at))
        }
        Seg::Index(n) => {
            // The n-th `- ` item whose dash sits at `col`.
            let items: Vec<usize> = (start..end)
                .filter(|&i| yaml_line(lines[i]).is_some_and(|l| l.dash && l.indent == col))
                .collect();
            let at = *items.get(*n)?;
            let stop = items.get(n + 1).copied().unwrap_or(end);
            if rest.is_empty() {
                return Some(at);
            }
            let child_col = yaml_line(lines[at])?.key_col;
            yaml_in(lines, at, stop, child_col, rest).or(Some(at))
        }
    }
}

// ------------------------------------------------------------------------------ TOML

fn toml_header(line: &str) -> Option<(bool, &str)> {
    let t = line.trim();
    if let Some(inner) = t.strip_prefix("[[") {
        let name = inner.split("]]").next()?.trim();
        Some((true, name))
    } else if let Some(inner) = t.strip_prefix('[') {
        let name = inner.split(']').next()?.trim();
        Some((false, name))
    } else {
        None
    }
}

fn toml_key_line(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let rest = t
        .strip_prefix(key)
        .or_else(|| t.strip_prefix(&format!("\"{key}\"")));
    rest.is_some_and(|r| r.trim_start().starts_with('='))
}

/// Handles the shapes `tollgate export --format toml` and people write: `[[list]]`
/// headers with `key = value` lines, and nested `[[list.key]]` headers for lists of
/// tables inside an entity.
fn locate_toml(text: &str, segs: &[Seg]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (Some(Seg::Key(list)), Some(Seg::Index(n))) = (segs.first(), segs.get(1)) else {
        return None;
    };
    let headers: Vec<usize> = (0..lines.len())
        .filter(|&i| toml_header(lines[i]) == Some((true, list.as_str())))
        .collect();
    let at = *headers.get(*n)?;
    // The entity's own keys run until the next header of any kind.
    let own_end = (at + 1..lines.len())
        .find(|&i| toml_header(lines[i]).is_some())
        .unwrap_or(lines.len());
    let Some(Seg::Key(key)) = segs.get(2) else {
        return Some(at + 1);
    };
    if let Some(k) = (at + 1..own_end).find(|&i| toml_key_line(lines[i], key)) {
        return Some(k + 1);
    }
    // Nested `[[list.key]]` tables up to the next `[[list]]`.
    let entity_end = headers.get(n + 1).copied().unwrap_or(lines.len());
    let sub = format!("{list}.{key}");
    let subs: Vec<usize> = (at + 1..entity_end)
        .filter(|&i| toml_header(lines[i]) == Some((true, sub.as_str())))
        .collect();
    let Some(Seg::Index(m)) = segs.get(3) else {
        // Or a nested `[list.key]` table (an inline document), or a table inside it.
        let table = (at + 1..entity_end).find(|&i| {
            toml_header(lines[i])
                .is_some_and(|(many, h)| !many && (h == sub || h.starts_with(&format!("{sub}."))))
        });
        return subs.first().or(table.as_ref()).map(|s| s + 1);
    };
    let s = *subs.get(*m)?;
    let Some(Seg::Key(k2)) = segs.get(4) else {
        return Some(s + 1);
    };
    let s_end = (s + 1..lines.len())
        .find(|&i| toml_header(lines[i]).is_some())
        .unwrap_or(lines.len());
    (s + 1..s_end)
        .find(|&i| toml_key_line(lines[i], k2))
        .map(|l| l + 1)
        .or(Some(s + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> FieldPath {
        let mut p = FieldPath::default();
        for part in s.split('.') {
            let (k, idx) = match part.split_once('[') {
                Some((k, i)) => (k, Some(i.trim_end_matches(']').parse().unwrap())),
                None => (part, None),
            };
            p = p.key(k);
            if let Some(i) = idx {
                p = p.index(i);
            }
        }
        p
    }

    fn check(format: Format, text: &str, field: &str, expected: Option<usize>) {
        let p = path(field);
        assert_eq!(p.to_string(), field);
        assert_eq!(locate(format, text, &p), expected, "{field}");
    }

    const YAML: &str = "\
# a comment
orgs:
  - slug: acme
    name: Acme
    kind: provider
apis:
  - org: acme
    slug: weather
    name: Weather
    hosts: [a.example.com]
    upstreams:
      - http://127.0.0.1:9000
      - http://127.0.0.1:9001
  -   org: acme

      slug: maps
      base_path: /maps
plans:
- org: acme
  slug: free
  apis:
    - api: weather
      operations: [a]
    - api: maps
      operations:
        - getMap
apps: []
";

    #[test]
    fn yaml_lines() {
        check(Format::Yaml, YAML, "orgs[0].kind", Some(5));
        check(Format::Yaml, YAML, "apis[0]", Some(7));
        check(Format::Yaml, YAML, "apis[0].slug", Some(8));
        check(Format::Yaml, YAML, "apis[0].hosts[0]", Some(10));
        check(Format::Yaml, YAML, "apis[0].upstreams[1]", Some(13));
        check(Format::Yaml, YAML, "apis[1].base_path", Some(17));
        check(Format::Yaml, YAML, "apis[1].slug", Some(16));
        // A key the item does not have falls back to the item.
        check(Format::Yaml, YAML, "apis[1].name", Some(14));
        check(Format::Yaml, YAML, "plans[0].slug", Some(20));
        check(Format::Yaml, YAML, "plans[0].apis[1].api", Some(24));
        check(
            Format::Yaml,
            YAML,
            "plans[0].apis[1].operations[0]",
            Some(26),
        );
        // Past the end: the nearest line found, the list itself.
        check(Format::Yaml, YAML, "plans[1].slug", Some(18));
        check(Format::Yaml, YAML, "apps", Some(27));
    }

    const TOML: &str = r#"[[orgs]]
slug = "acme"
name = "Acme"

[[apis]]
org = "acme"
slug = "weather"

[[apis]]
org = "acme"
"slug" = "maps"
base_path = "/maps"

[[plans]]
org = "acme"
slug = "free"

[[plans.apis]]
api = "weather"

[[plans.apis]]
api = "maps"
operations = ["getMap"]
"#;

    #[test]
    fn toml_lines() {
        check(Format::Toml, TOML, "orgs[0].name", Some(3));
        check(Format::Toml, TOML, "apis[1].slug", Some(11));
        check(Format::Toml, TOML, "apis[1].base_path", Some(12));
        check(Format::Toml, TOML, "apis[1]", Some(9));
        check(Format::Toml, TOML, "apis[2].slug", None);
        check(Format::Toml, TOML, "plans[0].apis[1].operations", Some(23));
        check(Format::Toml, TOML, "plans[0].apis[0]", Some(18));
        check(Format::Json, "{}", "apis[0]", None);
    }

    #[test]
    fn dotted_paths_become_fields() {
        let p = FieldPath::entity("terms", 1)
            .key("document")
            .dotted("limits.quota[0].requests");
        assert_eq!(p.to_string(), "terms[1].document.limits.quota[0].requests");
        assert_eq!(
            FieldPath::default().dotted("a[0][2]").to_string(),
            "a[0][2]"
        );
    }

    #[test]
    fn pointers_become_fields() {
        let p = FieldPath::entity("apis", 2).pointer("/hosts/0");
        assert_eq!(p.to_string(), "apis[2].hosts[0]");
        assert_eq!(line_of_offset("a\nb\nc", 2), 2);
        assert_eq!(line_of_offset("a\nb\nc", 0), 1);
    }
}
