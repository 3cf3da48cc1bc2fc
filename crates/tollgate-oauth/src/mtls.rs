//! RFC 8705 `tls_client_auth`: who a CA-issued client certificate names, and whether that
//! matches the subject a client registered.
//!
//! The chain itself is checked elsewhere (the gateway's TLS layer, with rustls' WebPKI
//! verifier and the configured CRLs); this module only reads the end-entity certificate's
//! subject distinguished name and subject alternative names (with `x509-parser`) and
//! compares them with the registered value:
//!
//! - a value with an unescaped `=` is a distinguished name in RFC 4514 string form
//!   (`CN=payments,O=Acme\, Inc.,C=FR`), compared attribute by attribute as LDAP's
//!   `distinguishedNameMatch` does for directory strings: attribute types case-insensitive
//!   (short names or dotted OIDs), values case-insensitive with insignificant spaces
//!   ignored, the attributes of a multi-valued RDN in any order, the RDNs in order;
//! - an IP address matches an `iPAddress` SAN;
//! - a value with `://` or starting `urn:` matches a `uniformResourceIdentifier` SAN exactly;
//! - a value with `@` matches an `rfc822Name` SAN (the domain case-insensitively);
//! - anything else matches a `dNSName` SAN case-insensitively (a trailing dot ignored).
//!
//! RFC 8705 §2.1.2 registers these as separate client metadata (`tls_client_auth_subject_dn`,
//! `…_san_dns`, `…_san_uri`, `…_san_ip`, `…_san_email`); one `tls_subject` field whose form
//! says which it is keeps registration to one field without ambiguity, since a DN always
//! holds `=` and none of the SAN forms does.

use std::fmt::Write as _;
use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the client certificate is not valid DER X.509: {0}")]
    Malformed(String),
}

/// One attribute of a relative distinguished name: canonical type and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attribute {
    /// Upper-case RFC 4514 short name (`CN`, `O`, …) or the dotted OID.
    kind: String,
    /// The value as the certificate holds it (strings), or `#` + hex for other types.
    value: String,
}

/// The names a client certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertIdentity {
    /// The subject's RDNs in certificate (ASN.1) order: most significant first.
    subject: Vec<Vec<Attribute>>,
    /// `dNSName` SANs.
    pub dns: Vec<String>,
    /// `uniformResourceIdentifier` SANs.
    pub uris: Vec<String>,
    /// `rfc822Name` SANs.
    pub emails: Vec<String>,
    /// `iPAddress` SANs.
    pub ips: Vec<IpAddr>,
}

impl CertIdentity {
    /// Reads the subject and subject alternative names of a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let mut identity = CertIdentity {
            subject: rdns(cert.subject()),
            ..CertIdentity::default()
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match name {
                GeneralName::DNSName(d) => identity.dns.push((*d).to_owned()),
                GeneralName::URI(u) => identity.uris.push((*u).to_owned()),
                GeneralName::RFC822Name(e) => identity.emails.push((*e).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    identity.ips.extend(ip);
                }
                _ => {}
            }
        }
        Ok(identity)
    }

    /// The subject distinguished name as an RFC 4514 string (least significant RDN
    /// first, as RFC 4514 §2.1 orders them), e.g. `CN=payments,O=Acme,C=FR`.
    pub fn subject_dn(&self) -> String {
        let mut out = String::new();
        for (i, rdn) in self.subject.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, a) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                out.push_str(&a.kind);
                out.push('=');
                if a.value.starts_with('#') && a.kind.contains('.') {
                    out.push_str(&a.value);
                } else {
                    escape_value(&a.value, &mut out);
                }
            }
        }
        out
    }

    /// Whether the certificate names `registered` (see the module docs for the forms).
    pub fn matches(&self, registered: &str) -> bool {
        // A DN is parsed untrimmed: its last character may be an escaped space.
        if has_unescaped(registered, '=') {
            return match parse_dn(registered) {
                Some(mut wanted) => {
                    // RFC 4514 strings list the least significant RDN first.
                    wanted.reverse();
                    dn_equal(&wanted, &self.subject)
                }
                None => false,
            };
        }
        let registered = registered.trim();
        if registered.is_empty() {
            return false;
        }
        if let Ok(ip) = registered.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        if registered.contains("://") || registered.to_ascii_lowercase().starts_with("urn:") {
            return self.uris.iter().any(|u| u == registered);
        }
        if let Some((local, domain)) = registered.rsplit_once('@') {
            return self.emails.iter().any(|e| {
                e.rsplit_once('@')
                    .is_some_and(|(l, d)| l == local && d.eq_ignore_ascii_case(domain))
            });
        }
        let wanted = registered.trim_end_matches('.');
        self.dns
            .iter()
            .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(wanted))
    }
}

/// The RDNs of `name` in certificate order.
fn rdns(name: &X509Name<'_>) -> Vec<Vec<Attribute>> {
    name.iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let value = match atv.as_str() {
                        Ok(s) => s.to_owned(),
                        // BMPString, TeletexString, …: kept as hex so that the value still
                        // compares exactly (RFC 4514 §2.4 renders such values as `#hex`).
                        Err(_) => {
                            let mut s = String::from("#");
                            for b in atv.as_slice() {
                                let _ = write!(s, "{b:02x}");
                            }
                            s
                        }
                    };
                    Attribute {
                        kind: short_name(&oid).map_or(oid, str::to_owned),
                        value,
                    }
                })
                .collect()
        })
        .collect()
}

/// RFC 4514 §3 short names (and the e-mail attribute OpenSSL prints), by OID.
const SHORT_NAMES: [(&str, &str); 10] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
];

fn short_name(oid: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .find(|(o, _)| *o == oid)
        .map(|(_, name)| *name)
}

/// The canonical type of an attribute type written in a DN string.
fn canonical_type(written: &str) -> String {
    let t = written.trim();
    let t = t
        .strip_prefix("OID.")
        .or_else(|| t.strip_prefix("oid."))
        .unwrap_or(t);
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        return short_name(t).map_or_else(|| t.to_owned(), str::to_owned);
    }
    let upper = t.to_ascii_uppercase();
    match upper.as_str() {
        "E" => "EMAILADDRESS".to_owned(),
        _ => upper,
    }
}

/// Escapes an attribute value for an RFC 4514 string (§2.4).
fn escape_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether `s` holds `c` outside a backslash escape.
fn has_unescaped(s: &str, c: char) -> bool {
    let mut escaped = false;
    for ch in s.chars() {
        if escaped {
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == c {
            return true;
        }
    }
    false
}

/// Parses an RFC 4514 string into RDNs in string order, or `None` if it is malformed.
fn parse_dn(s: &str) -> Option<Vec<Vec<Attribute>>> {
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut kind = String::new();
    let mut value: Vec<u8> = Vec::new();
    let mut in_value = false;
    // Trailing unescaped spaces of a value are insignificant; escaped ones are kept.
    let mut significant = 0usize;
    let mut chars = s.chars().peekable();
    let finish = |kind: &mut String, value: &mut Vec<u8>, significant: usize| {
        value.truncate(significant);
        let v = String::from_utf8(std::mem::take(value)).ok()?;
        let k = canonical_type(&std::mem::take(kind));
        if k.is_empty() {
            return None;
        }
        Some(Attribute { kind: k, value: v })
    };
    while let Some(c) = chars.next() {
        if !in_value {
            if c == '=' {
                in_value = true;
                significant = 0;
            } else if c == ',' || c == '+' {
                return None;
            } else {
                kind.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                let next = chars.next()?;
                if next.is_ascii_hexdigit() {
                    let low = chars.next()?;
                    let byte = u8::from_str_radix(&format!("{next}{low}"), 16).ok()?;
                    value.push(byte);
                } else {
                    let mut buf = [0u8; 4];
                    value.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                }
                significant = value.len();
            }
            ',' | '+' => {
                rdn.push(finish(&mut kind, &mut value, significant)?);
                in_value = false;
                if c == ',' {
                    rdns.push(std::mem::take(&mut rdn));
                }
                // Spaces after a separator are insignificant.
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            ' ' if value.is_empty() => {}
            _ => {
                let mut buf = [0u8; 4];
                value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                if c != ' ' {
                    significant = value.len();
                }
            }
        }
    }
    if !in_value {
        return None;
    }
    rdn.push(finish(&mut kind, &mut value, significant)?);
    rdns.push(rdn);
    Some(rdns)
}

/// `distinguishedNameMatch` over directory strings: same RDNs in the same order, each
/// RDN the same set of attributes.
fn dn_equal(a: &[Vec<Attribute>], b: &[Vec<Attribute>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter()
                    .all(|ax| y.iter().any(|ay| attribute_equal(ax, ay)))
                && y.iter()
                    .all(|ay| x.iter().any(|ax| attribute_equal(ax, ay)))
        })
}

fn attribute_equal(a: &Attribute, b: &Attribute) -> bool {
    a.kind == b.kind && fold(&a.value) == fold(&b.value)
}

/// caseIgnoreMatch preparation: case folded, leading/trailing spaces dropped and inner
/// runs of spaces collapsed to one (RFC 4518 §2.6.1, insignificant space handling).
fn fold(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(subject: &[&[(&str, &str)]]) -> CertIdentity {
        CertIdentity {
            subject: subject
                .iter()
                .map(|rdn| {
                    rdn.iter()
                        .map(|(k, v)| Attribute {
                            kind: (*k).to_owned(),
                            value: (*v).to_owned(),
                        })
                        .collect()
                })
                .collect(),
            dns: vec!["payments.acme.example".into()],
            uris: vec!["spiffe://acme.example/payments".into()],
            emails: vec!["Ops@Acme.example".into()],
            ips: vec!["10.0.0.7".parse().unwrap()],
        }
    }

    #[test]
    fn dn_rendering_and_matching() {
        let id = identity(&[
            &[("C", "FR")],
            &[("O", "Acme, Inc.")],
            &[("CN", "payments"), ("OU", "billing")],
        ]);
        assert_eq!(
            id.subject_dn(),
            r"CN=payments+OU=billing,O=Acme\, Inc.,C=FR"
        );
        let check = |registered: &str, expected: bool| {
            assert_eq!(id.matches(registered), expected, "{registered}");
        };
        check(r"CN=payments+OU=billing,O=Acme\, Inc.,C=FR", true);
        check(r"ou=Billing + cn=PAYMENTS, o=acme\2C  inc., c=fr", true);
        check(
            r"2.5.4.3=payments+OU=billing,OID.2.5.4.10=Acme\, Inc.,C=FR",
            true,
        );
        // Order of RDNs counts; a missing or extra RDN does not match.
        check(r"C=FR,O=Acme\, Inc.,CN=payments+OU=billing", false);
        check(r"CN=payments+OU=billing,O=Acme\, Inc.", false);
        check(r"CN=payments,O=Acme\, Inc.,C=FR", false);
        check(r"CN=payments+OU=billing,O=Acme Inc.,C=FR", false);
        // Malformed strings match nothing.
        check("CN=payments,,C=FR", false);
        check("=payments", false);
        check(r"CN=payments\", false);
    }

    #[test]
    fn san_matching() {
        let id = identity(&[&[("CN", "x")]]);
        let check = |registered: &str, expected: bool| {
            assert_eq!(id.matches(registered), expected, "{registered}");
        };
        check("payments.acme.example", true);
        check("PAYMENTS.acme.example.", true);
        check("other.acme.example", false);
        check("spiffe://acme.example/payments", true);
        check("spiffe://acme.example/Payments", false);
        check("Ops@acme.EXAMPLE", true);
        check("ops@acme.example", false);
        check("10.0.0.7", true);
        check("10.0.0.8", false);
        check("", false);
    }

    #[test]
    fn escapes_round_trip() {
        let id = identity(&[&[("CN", " #lead, +trail; <x> ")]]);
        let dn = id.subject_dn();
        assert_eq!(dn, r"CN=\ #lead\, \+trail\; \<x\>\ ");
        assert!(id.matches(&dn));
    }
}
