//! The request headers a mock answer depends on: `Accept` against the media types a
//! response declares (RFC 9110 §12.5.1), and `Prefer: code=…` / `Prefer: example=…`
//! (RFC 7240 syntax, with the preference names Prism and other mock servers read).
//!
//! Everything here runs per request, so it borrows from the header values and allocates
//! only to unescape a quoted example name.

use std::borrow::Cow;
use std::cmp::Reverse;

/// A media type as declared by a `content` key, parsed once for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaType {
    /// Lower case, e.g. `application`; `*` in a declared range.
    pub(crate) ty: String,
    /// Lower case, e.g. `problem+json`; `*` in a declared range.
    pub(crate) subtype: String,
    /// Parameters in order, names in lower case, values unquoted.
    pub(crate) params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype *(; name=value)`; `None` when malformed.
    pub(crate) fn parse(text: &str) -> Option<MediaType> {
        let mut parts = SplitUnquoted::new(text, b';');
        let (ty, subtype) = parts.next()?.trim().split_once('/')?;
        if !is_token(ty) || !is_token(subtype) || (ty == "*" && subtype != "*") {
            return None;
        }
        let mut params = Vec::new();
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, value) = part.split_once('=')?;
            let name = name.trim();
            if !is_token(name) {
                return None;
            }
            params.push((
                name.to_ascii_lowercase(),
                unquote(value.trim()).into_owned(),
            ));
        }
        Some(MediaType {
            ty: ty.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            params,
        })
    }

    /// `application/json`, `application/problem+json`, … (also the legacy `text/json`).
    pub(crate) fn is_json(&self) -> bool {
        self.subtype == "json" || self.subtype.ends_with("+json")
    }

    /// Whether this is a range such as `*/*` or `text/*` rather than one media type.
    pub(crate) fn is_range(&self) -> bool {
        self.subtype == "*"
    }

    /// 2 for `application/json` itself, 1 for another JSON type, 0 otherwise: the order of
    /// preference among equally acceptable media types.
    fn json_rank(&self) -> u8 {
        if self.ty == "application" && self.subtype == "json" {
            2
        } else {
            u8::from(self.is_json())
        }
    }
}

/// The best of `offers` under `accept`: the highest quality, then `application/json`,
/// then another JSON type, then document order. `None` when every offer has quality 0.
/// A missing header, or one without a single valid media range, accepts everything.
pub(crate) fn choose<'o, T>(
    offers: &'o [T],
    media: impl Fn(&T) -> &MediaType,
    accept: Option<&str>,
) -> Option<&'o T> {
    offers
        .iter()
        .enumerate()
        .filter_map(|(i, offer)| {
            let m = media(offer);
            let q = accept.and_then(|a| quality(a, m)).unwrap_or(1000);
            (q > 0).then_some(((q, m.json_rank(), Reverse(i)), offer))
        })
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, offer)| offer)
}

/// How acceptable `media` is under the `Accept` value `accept`, in thousandths (0: not
/// acceptable). The most specific matching range decides (RFC 9110 §12.5.1). `None` when
/// the header holds no valid media range, and so expresses no preference.
pub(crate) fn quality(accept: &str, media: &MediaType) -> Option<u16> {
    let mut any_valid = false;
    let mut best: Option<(Specificity, u16)> = None;
    for element in SplitUnquoted::new(accept, b',') {
        match judge(element, media) {
            Judged::Invalid => {}
            Judged::NoMatch => any_valid = true,
            Judged::Match(specificity, q) => {
                any_valid = true;
                if best.is_none_or(|(s, _)| specificity > s) {
                    best = Some((specificity, q));
                }
            }
        }
    }
    any_valid.then(|| best.map_or(0, |(_, q)| q))
}

/// Exact type, exact subtype, number of matching parameters: larger is more specific.
type Specificity = (bool, bool, usize);

enum Judged {
    Invalid,
    NoMatch,
    Match(Specificity, u16),
}

/// One media range of an `Accept` value against `media`.
///
/// A parameter of the range excludes a media type only when the media type declares the
/// same parameter with another value: documents rarely spell out `charset=utf-8`, and a
/// client asking for `application/json; charset=utf-8` should still get the JSON.
fn judge(element: &str, media: &MediaType) -> Judged {
    let mut parts = SplitUnquoted::new(element, b';');
    let Some((ty, subtype)) = parts.next().and_then(|r| r.trim().split_once('/')) else {
        return Judged::Invalid;
    };
    if !is_token(ty) || !is_token(subtype) || (ty == "*" && subtype != "*") {
        return Judged::Invalid;
    }
    let (type_exact, subtype_exact) = (ty != "*", subtype != "*");
    let matches = (!type_exact || ty.eq_ignore_ascii_case(&media.ty))
        && (!subtype_exact || subtype.eq_ignore_ascii_case(&media.subtype));
    let mut q = 1000;
    let mut matched_params = 0;
    let mut params_agree = true;
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Judged::Invalid;
        };
        let (name, value) = (name.trim(), unquote(value.trim()));
        if !is_token(name) {
            return Judged::Invalid;
        }
        if name.eq_ignore_ascii_case("q") {
            let Some(parsed) = parse_q(&value) else {
                return Judged::Invalid;
            };
            q = parsed;
            // What follows `q` are accept extensions, not media type parameters.
            break;
        }
        match media
            .params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) if v.eq_ignore_ascii_case(&value) => matched_params += 1,
            Some(_) => params_agree = false,
            None => {}
        }
    }
    if matches && params_agree {
        Judged::Match((type_exact, subtype_exact, matched_params), q)
    } else {
        Judged::NoMatch
    }
}

/// An RFC 9110 qvalue in thousandths: `0`, `0.5`, `0.125`, `1`, `1.000`.
fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match int {
        "0" => Some(
            frac.bytes()
                .chain(std::iter::repeat(b'0'))
                .take(3)
                .fold(0, |acc, b| acc * 10 + u16::from(b - b'0')),
        ),
        "1" if frac.bytes().all(|b| b == b'0') => Some(1000),
        _ => None,
    }
}

/// The `Prefer` preferences a mock honours.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Preferences<'h> {
    /// `code=404`: answer with this status if the operation declares it.
    pub(crate) code: Option<u16>,
    /// `example=name`: answer with this named example if the media type has it.
    pub(crate) example: Option<Cow<'h, str>>,
}

/// Reads `code` and `example` from a `Prefer` value; other preferences are ignored, and
/// only the first instance of each counts (RFC 7240 §2). Several `Prefer` field lines
/// can be passed joined with `, `.
pub(crate) fn preferences(header: &str) -> Preferences<'_> {
    let mut out = Preferences::default();
    let (mut seen_code, mut seen_example) = (false, false);
    for element in SplitUnquoted::new(header, b',') {
        // Preference parameters after `;` are ignored.
        let Some(preference) = SplitUnquoted::new(element, b';').next() else {
            continue;
        };
        let (name, value) = match preference.split_once('=') {
            Some((name, value)) => (name.trim(), unquote(value.trim())),
            None => (preference.trim(), Cow::Borrowed("")),
        };
        if name.eq_ignore_ascii_case("code") && !seen_code {
            seen_code = true;
            out.code = parse_status(&value);
        } else if name.eq_ignore_ascii_case("example") && !seen_example {
            seen_example = true;
            out.example = (!value.is_empty()).then_some(value);
        }
    }
    out
}

/// A three-digit status code from 100 to 599.
pub(crate) fn parse_status(text: &str) -> Option<u16> {
    if text.len() != 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|code| (100..=599).contains(code))
}

/// An RFC 9110 token: one or more of ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The content of a quoted-string (escapes removed), or `text` itself if not quoted.
fn unquote(text: &str) -> Cow<'_, str> {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Cow::Borrowed(text);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Splits on `sep` outside quoted-strings, so `a;x="1,2", b` splits on `,` into two.
struct SplitUnquoted<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> SplitUnquoted<'a> {
    fn new(text: &'a str, sep: u8) -> Self {
        SplitUnquoted {
            rest: Some(text),
            sep,
        }
    }
}

impl<'a> Iterator for SplitUnquoted<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let text = self.rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in text.bytes().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if !quoted && b == self.sep {
                // `sep` is ASCII, so `i` and `i + 1` are character boundaries.
                self.rest = Some(&text[i + 1..]);
                return Some(&text[..i]);
            }
        }
        self.rest = None;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(text: &str) -> MediaType {
        MediaType::parse(text).unwrap()
    }

    /// Which of `offers` `accept` picks.
    fn check(offers: &[&str], accept: Option<&str>, expected: Option<&str>) {
        let offers: Vec<MediaType> = offers.iter().map(|o| media(o)).collect();
        let chosen = choose(&offers, |m| m, accept);
        assert_eq!(chosen, expected.map(media).as_ref(), "{accept:?}");
    }

    #[test]
    fn media_types() {
        let m = media("Application/Problem+JSON; charset=\"UTF-8\"; v=1");
        assert_eq!(
            (m.ty.as_str(), m.subtype.as_str()),
            ("application", "problem+json")
        );
        assert_eq!(
            m.params,
            [
                ("charset".to_owned(), "UTF-8".to_owned()),
                ("v".to_owned(), "1".to_owned())
            ]
        );
        assert!(m.is_json() && !m.is_range());
        assert!(media("text/json").is_json());
        assert!(!media("application/jsonl").is_json());
        assert!(media("*/*").is_range() && media("text/*").is_range());
        for bad in ["json", "*/json", "a/b c", "/b", "a/", "a/b; =1", "a/b; x"] {
            assert_eq!(MediaType::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn negotiation() {
        let offers = ["application/xml", "application/json", "text/plain"];
        // No preference: application/json, wherever it is declared.
        check(&offers, None, Some("application/json"));
        check(&offers, Some(""), Some("application/json"));
        check(&offers, Some("*/*"), Some("application/json"));
        check(&offers, Some("garbage, ;;"), Some("application/json"));
        check(&offers, Some("text/plain"), Some("text/plain"));
        check(&offers, Some("TEXT/*"), Some("text/plain"));
        check(
            &offers,
            Some("application/*;q=0.9, text/plain;q=0.8"),
            Some("application/json"),
        );
        check(
            &offers,
            Some("application/json;q=0.5, application/xml"),
            Some("application/xml"),
        );
        // The most specific range decides, whatever the order.
        check(
            &offers,
            Some("application/json;q=0, */*"),
            Some("application/xml"),
        );
        check(
            &offers,
            Some("*/*, application/json;q=0"),
            Some("application/xml"),
        );
        check(&offers, Some("image/png"), None);
        check(
            &offers,
            Some("application/json;q=0, application/xml;q=0, text/*;q=0"),
            None,
        );
        check(&offers, Some("*/*;q=0"), None);
        // Invalid ranges are skipped; valid ones still count.
        check(
            &offers,
            Some("json, text/plain;q=x, text/plain"),
            Some("text/plain"),
        );
        check(
            &offers,
            Some("application/json;q=1.5"),
            Some("application/json"),
        );
        // Parameters: ignored unless the declared media type says otherwise.
        check(
            &["application/json"],
            Some("application/json; charset=utf-8"),
            Some("application/json"),
        );
        check(
            &["text/plain; charset=us-ascii", "text/plain; charset=utf-8"],
            Some("text/plain; charset=UTF-8"),
            Some("text/plain; charset=utf-8"),
        );
        check(
            &["text/plain; charset=us-ascii"],
            Some("text/plain; charset=utf-8"),
            None,
        );
        // A quoted comma does not split the header.
        check(
            &offers,
            Some("text/plain; x=\"a,b\"; q=0.3, application/xml; q=0.2"),
            Some("text/plain"),
        );
        // JSON flavours come after application/json and before other types.
        check(
            &["application/xml", "application/problem+json"],
            None,
            Some("application/problem+json"),
        );
    }

    #[test]
    fn qvalues() {
        for (text, expected) in [
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.125", Some(125)),
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("1.001", None),
            ("0.1234", None),
            ("2", None),
            (".5", None),
            ("-0", None),
            ("", None),
        ] {
            assert_eq!(parse_q(text), expected, "{text:?}");
        }
    }

    #[test]
    fn prefer() {
        let p = |h| preferences(h);
        assert_eq!(p("code=404").code, Some(404));
        assert_eq!(p("code=404").example, None);
        let both = p("respond-async, Code = \"201\"; x=1, example=\"two words\"");
        assert_eq!(both.code, Some(201));
        assert_eq!(both.example.as_deref(), Some("two words"));
        assert_eq!(p("example=\"a\\\"b,c\"").example.as_deref(), Some("a\"b,c"));
        // Only the first instance counts, even when it is invalid.
        assert_eq!(p("code=200, code=404").code, Some(200));
        assert_eq!(p("code=abc, code=404").code, None);
        assert_eq!(p("example=a, example=b").example.as_deref(), Some("a"));
        for bad in [
            "code=99",
            "code=600",
            "code=2000",
            "code=",
            "code",
            "code=20x",
        ] {
            assert_eq!(p(bad).code, None, "{bad}");
        }
        assert_eq!(p("").code, None);
        assert_eq!(p("example=").example, None);
    }

    #[test]
    fn splitting() {
        let split = |s, sep| SplitUnquoted::new(s, sep).collect::<Vec<_>>();
        assert_eq!(split("a,b", b','), ["a", "b"]);
        assert_eq!(split("", b','), [""]);
        assert_eq!(split("a,", b','), ["a", ""]);
        assert_eq!(split("x=\"1,2\",y", b','), ["x=\"1,2\"", "y"]);
        assert_eq!(split("x=\"\\\",\",y", b','), ["x=\"\\\",\"", "y"]);
        assert_eq!(split("x=\"open,y", b','), ["x=\"open,y"]);
    }
}
