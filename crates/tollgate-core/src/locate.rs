//! Best-effort mapping from a field path (`grants[1].operations[0]`,
//! `plans[0].apis[1].operations[0]`) to the line that holds it in a YAML, TOML or JSON
//! text, for errors found after parsing, when the parser's own position is gone. It reads
//! the text line by line rather than re-parsing, so it copes with unusual but valid files
//! only as well as a person skimming them would; when unsure it answers the line of the
//! nearest enclosing field, or `None`. Shared by the manifest and term sheet loaders.

use std::fmt;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `grants[1].operations[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The `index`-th entity of the top-level list `list`, e.g. `apis[1]`.
    pub fn entity(list: &str, index: usize) -> Self {
        FieldPath(vec![Seg::Key(list.to_owned()), Seg::Index(index)])
    }

    /// Appends a key.
    pub fn key(mut self, key: &str) -> Self {
        self.0.push(Seg::Key(key.to_owned()));
        self
    }

    /// Appends a list index.
    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }

    /// Appends a dotted field path such as a term sheet's `limits.quota[0].requests`.
    /// Unlike [`FieldPath::parse`], a bracketed part that is not a number is kept as a key.
    pub fn dotted(mut self, field: &str) -> Self {
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

    /// Appends a JSON pointer such as core validation's `/hosts/0`.
    pub fn pointer(mut self, pointer: &str) -> Self {
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            match token.parse::<usize>() {
                Ok(i) => self.0.push(Seg::Index(i)),
                Err(_) => self.0.push(Seg::Key(token)),
            }
        }
        self
    }

    /// Parses the dotted form `Display` writes (`a.b[2].c`).
    pub fn parse(s: &str) -> FieldPath {
        let mut segs = Vec::new();
        for part in s.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(i) = rest.find('[') {
                if i > 0 {
                    segs.push(Seg::Key(rest[..i].to_owned()));
                }
                rest = &rest[i..];
                while let Some(r) = rest.strip_prefix('[') {
                    let Some((n, after)) = r.split_once(']') else {
                        break;
                    };
                    if let Ok(n) = n.parse() {
                        segs.push(Seg::Index(n));
                    }
                    rest = after;
                }
            } else {
                segs.push(Seg::Key(rest.to_owned()));
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

/// The file formats a manifest or term sheet can be written in.
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

    /// A guess from the content, for text without a telling file name: JSON starts with
    /// `{`; TOML has a `key = value` or `[table]` line before any `key:` line; else YAML.
    pub fn sniff(text: &str) -> Format {
        let t = text.trim_start();
        if t.starts_with('{') {
            return Format::Json;
        }
        for line in t.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if l.starts_with('[') {
                return Format::Toml;
            }
            let eq = l.find('=');
            let colon = l.find(':');
            return match (eq, colon) {
                (Some(e), Some(c)) if e < c => Format::Toml,
                (Some(_), None) => Format::Toml,
                _ => Format::Yaml,
            };
        }
        Format::Yaml
    }
}

/// The 1-based line of `path` in `text`, if it can be found.
pub fn locate(format: Format, text: &str, path: &FieldPath) -> Option<usize> {
    match format {
        Format::Yaml => locate_yaml(text, &path.0),
        Format::Toml => nearest(&toml_entries(text), &path.0),
        Format::Json => nearest(&json_entries(text), &path.0),
    }
}

/// 1-based line number of the byte offset `at` in `text`.
pub fn line_of_offset(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of the entry equal to `path`; else of the first entry inside it (a TOML
/// table written only through its sub-tables, `[plans.terms]` or `[[plans.apis]]`);
/// else of the longest entry that is a prefix of it (its enclosing field); 1-based.
fn nearest(entries: &[(Vec<Seg>, usize)], path: &[Seg]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let exact = entries.iter().find(|(p, _)| p == path);
    if let Some((_, line)) = exact.or_else(|| entries.iter().find(|(p, _)| p.starts_with(path))) {
        return Some(line + 1);
    }
    let mut best: Option<(usize, usize)> = None;
    for (p, line) in entries {
        if p.len() <= path.len() && path.starts_with(p) && best.is_none_or(|(len, _)| p.len() > len)
        {
            best = Some((p.len(), *line));
        }
    }
    best.filter(|(len, _)| *len > 0).map(|(_, l)| l + 1)
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

fn locate_yaml(text: &str, segs: &[Seg]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let first = (0..lines.len())
        .find(|&i| yaml_line(lines[i]).is_some_and(|l| !l.key_text.starts_with("---")))?;
    let col = yaml_line(lines[first])?.key_col;
    yaml_in(&lines, first, lines.len(), col, segs).map(|l| l + 1)
}

/// Searches lines `[start, end)` (0-based) for `segs`, the first of which applies to the
/// node that begins at line `start` with its keys at column `col`.
fn yaml_in(lines: &[&str], start: usize, end: usize, col: usize, segs: &[Seg]) -> Option<usize> {
    let Some((seg, rest)) = segs.split_first() else {
        return Some(start);
    };
    match seg {
        Seg::Key(k) => {
            let at = (start..end).find(|&i| {
                yaml_line(lines[i]).is_some_and(|l| l.key_col == col && is_key(l.key_text, k))
            })?;
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

fn split_dotted(s: &str) -> Vec<String> {
    s.split('.')
        .map(|k| k.trim().trim_matches('"').trim_matches('\'').to_owned())
        .collect()
}

/// Every table header and `key = value` line of a TOML text, with the path it defines
/// (array-of-tables headers counted, so the second `[[grants]]` is `grants[1]`).
fn toml_entries(text: &str) -> Vec<(Vec<Seg>, usize)> {
    let mut out = Vec::new();
    let mut arrays: Vec<String> = Vec::new(); // dotted names of arrays of tables
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut current: Vec<Seg> = Vec::new();
    let mut in_multiline = false;
    for (i, raw) in text.lines().enumerate() {
        let quotes = raw.matches("\"\"\"").count() + raw.matches("'''").count();
        if in_multiline {
            if quotes % 2 == 1 {
                in_multiline = false;
            }
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let header = if let Some(inner) = line.strip_prefix("[[") {
            inner.split("]]").next().map(|n| (true, n))
        } else if let Some(inner) = line.strip_prefix('[') {
            inner.split(']').next().map(|n| (false, n))
        } else {
            None
        };
        if let Some((is_array, name)) = header {
            let keys = split_dotted(name);
            let mut path = Vec::new();
            for (j, k) in keys.iter().enumerate() {
                path.push(Seg::Key(k.clone()));
                let dotted = keys[..=j].join(".");
                let last = j + 1 == keys.len();
                if last && is_array {
                    let resolved = FieldPath(path.clone()).to_string();
                    let n = counts.entry(resolved).or_default();
                    path.push(Seg::Index(*n));
                    *n += 1;
                    if !arrays.contains(&dotted) {
                        arrays.push(dotted);
                    }
                } else if !last && arrays.contains(&dotted) {
                    let resolved = FieldPath(path.clone()).to_string();
                    let n = counts.get(&resolved).copied().unwrap_or(1);
                    path.push(Seg::Index(n.saturating_sub(1)));
                }
            }
            out.push((path.clone(), i));
            current = path;
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let mut path = current.clone();
            path.extend(split_dotted(k).into_iter().map(Seg::Key));
            out.push((path, i));
            if quotes % 2 == 1 && (v.contains("\"\"\"") || v.contains("'''")) {
                in_multiline = true;
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------ JSON

enum Frame {
    Obj { key: Option<String> },
    Arr { index: usize },
}

/// The start line of every value (and key) of a JSON text, with its path.
fn json_entries(text: &str) -> Vec<(Vec<Seg>, usize)> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 0;
    let mut chars = text.chars().peekable();
    let path_of = |stack: &[Frame]| -> Vec<Seg> {
        stack
            .iter()
            .map(|f| match f {
                Frame::Obj { key } => Seg::Key(key.clone().unwrap_or_default()),
                Frame::Arr { index } => Seg::Index(*index),
            })
            .collect()
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '{' => {
                out.push((path_of(&stack), line));
                stack.push(Frame::Obj { key: None });
            }
            '[' => {
                out.push((path_of(&stack), line));
                stack.push(Frame::Arr { index: 0 });
            }
            '}' | ']' => {
                stack.pop();
            }
            ',' => match stack.last_mut() {
                Some(Frame::Arr { index }) => *index += 1,
                Some(Frame::Obj { key }) => *key = None,
                None => {}
            },
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                s.push(n);
                            }
                        }
                        '"' => break,
                        '\n' => {
                            line += 1;
                            s.push(c);
                        }
                        _ => s.push(c),
                    }
                }
                if let Some(Frame::Obj { key }) = stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(s);
                    out.push((path_of(&stack), line));
                } else {
                    out.push((path_of(&stack), line));
                }
            }
            c if c.is_whitespace() || c == ':' => {}
            _ => {
                out.push((path_of(&stack), line));
                while chars
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']' | '\n'))
                {
                    chars.next();
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// Cases from the term sheet loader.
    mod terms {
        use super::super::*;

        fn check(format: Format, text: &str, field: &str, expected: Option<usize>) {
            let p = FieldPath::parse(field);
            assert_eq!(p.to_string(), field);
            assert_eq!(locate(format, text, &p), expected, "{field}");
        }

        #[test]
        fn yaml_lines() {
            let y = "id: a\ngrants:\n  - api: w\n    operations: [x, y]\n  - api: v\n    operations:\n      - z\nlimits:\n  rate:\n    - requests: 0\n      per: second\n";
            check(Format::Yaml, y, "grants[1].api", Some(5));
            check(Format::Yaml, y, "grants[0].operations[1]", Some(4));
            check(Format::Yaml, y, "grants[1].operations[0]", Some(7));
            check(Format::Yaml, y, "limits.rate[0].requests", Some(10));
            check(Format::Yaml, y, "limits.rate[0].per", Some(11));
        }

        #[test]
        fn toml_lines() {
            let t = "id = \"a\"\nbody = \"\"\"\nx = 1\n\"\"\"\n[[grants]]\napi = \"w\"\n\n[[grants]]\napi = \"v\"\noperations = [\"z\"]\n[grants.data]\ncategories = [\"q\"]\n[limits]\nrate = [{ requests = 0, per = \"second\" }]\n[[limits.quota]]\nrequests = 0\n";
            check(Format::Toml, t, "grants[1].api", Some(9));
            check(Format::Toml, t, "grants[1].operations[0]", Some(10));
            check(Format::Toml, t, "grants[1].data.categories[0]", Some(12));
            check(Format::Toml, t, "limits.rate[0].requests", Some(14));
            check(Format::Toml, t, "limits.quota[0].requests", Some(16));
            check(Format::Toml, t, "x", None);
        }

        #[test]
        fn json_lines() {
            let j = "{\n  \"id\": \"a\",\n  \"grants\": [\n    {\"api\": \"w\"},\n    {\n      \"api\": \"v\",\n      \"operations\": [\"x\",\n \"y\"]\n    }\n  ]\n}\n";
            check(Format::Json, j, "id", Some(2));
            check(Format::Json, j, "grants[0].api", Some(4));
            check(Format::Json, j, "grants[1].api", Some(6));
            check(Format::Json, j, "grants[1].operations[1]", Some(8));
            check(Format::Json, j, "grants[1].scopes", Some(5));
        }

        #[test]
        fn sniffing() {
            assert_eq!(Format::sniff("  {\"a\":1}"), Format::Json);
            assert_eq!(Format::sniff("# c\nid = \"x\"\n"), Format::Toml);
            assert_eq!(Format::sniff("[limits]\n"), Format::Toml);
            assert_eq!(Format::sniff("id: x\nurl: a=b\n"), Format::Yaml);
        }
    }

    /// Cases only the merged implementation covers.
    mod merged {
        use super::super::*;

        #[test]
        fn tables_known_only_by_their_sub_tables() {
            let t = "[[terms]]\norg = \"a\"\n\n[terms.document.limits]\nrate = []\n";
            let p = FieldPath::entity("terms", 0).key("document");
            assert_eq!(locate(Format::Toml, t, &p), Some(4));
            assert_eq!(locate(Format::Toml, t, &FieldPath::default()), None);
        }

        #[test]
        fn yaml_document_marker_is_skipped() {
            let y = "---\napis:\n  - slug: a\n";
            let p = FieldPath::entity("apis", 0).key("slug");
            assert_eq!(locate(Format::Yaml, y, &p), Some(3));
        }
    }

    /// Cases from the manifest loader.
    mod manifest {
        use super::super::*;

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
}
