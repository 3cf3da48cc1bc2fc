//! Component identifiers (RFC 9421 §2): a derived component (`@method`) or a field name
//! (`content-type`), each with its ordered parameters (`;sf`, `;key`, `;bs`, `;req`,
//! `;tr`, `;name`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use sfv::visitor::{ItemVisitor, ParameterVisitor};
use sfv::{BareItemFromInput, KeyRef, ParameterSerializer, StringRef, key_ref};

use crate::Error;

/// One parameter of a component identifier, in the order it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentParam<'a> {
    /// `;sf`: re-serialize the field as a structured field (RFC 9421 §2.1.1).
    Sf,
    /// `;key="m"`: one member of a dictionary field (§2.1.2).
    Key(Cow<'a, StringRef>),
    /// `;bs`: wrap each field line as a byte sequence (§2.1.3).
    Bs,
    /// `;req`: take the component from the request that triggered this response (§2.4).
    Req,
    /// `;tr`: the field is a trailer (§2.1.4; not supported for verification here).
    Tr,
    /// `;name="p"`: the query parameter of `@query-param` (§2.2.8).
    Name(Cow<'a, StringRef>),
}

impl ComponentParam<'_> {
    fn key(&self) -> &'static KeyRef {
        match self {
            ComponentParam::Sf => key_ref("sf"),
            ComponentParam::Key(_) => key_ref("key"),
            ComponentParam::Bs => key_ref("bs"),
            ComponentParam::Req => key_ref("req"),
            ComponentParam::Tr => key_ref("tr"),
            ComponentParam::Name(_) => key_ref("name"),
        }
    }

    fn into_owned(self) -> ComponentParam<'static> {
        match self {
            ComponentParam::Sf => ComponentParam::Sf,
            ComponentParam::Key(k) => ComponentParam::Key(Cow::Owned(k.into_owned())),
            ComponentParam::Bs => ComponentParam::Bs,
            ComponentParam::Req => ComponentParam::Req,
            ComponentParam::Tr => ComponentParam::Tr,
            ComponentParam::Name(n) => ComponentParam::Name(Cow::Owned(n.into_owned())),
        }
    }
}

/// The derived components of RFC 9421 §2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Derived {
    Method,
    TargetUri,
    Authority,
    Scheme,
    RequestTarget,
    Path,
    Query,
    QueryParam,
    Status,
}

impl Derived {
    fn from_name(name: &str) -> Option<Derived> {
        Some(match name {
            "@method" => Derived::Method,
            "@target-uri" => Derived::TargetUri,
            "@authority" => Derived::Authority,
            "@scheme" => Derived::Scheme,
            "@request-target" => Derived::RequestTarget,
            "@path" => Derived::Path,
            "@query" => Derived::Query,
            "@query-param" => Derived::QueryParam,
            "@status" => Derived::Status,
            _ => return None,
        })
    }
}

/// A covered component: its name and parameters, exactly as they are serialized in
/// `Signature-Input` and in the signature base.
///
/// Borrowed from the field it was parsed from where the field has no escapes; build one
/// with [`ComponentId::new`] or parse `"@query-param";name="id"` with [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentId<'a> {
    name: Cow<'a, StringRef>,
    params: Vec<ComponentParam<'a>>,
}

impl<'a> ComponentId<'a> {
    /// A component without parameters: a derived component name (`@path`) or a field
    /// name, which must be lowercase (`content-digest`).
    pub fn new(name: &'a str) -> Result<Self, Error> {
        let name = StringRef::from_str(name).map_err(|e| invalid(name, &e.to_string()))?;
        Self::from_parts(Cow::Borrowed(name), Vec::new())
    }

    /// Adds a parameter (builder style), keeping the order of calls.
    pub fn with_param(mut self, param: ComponentParam<'a>) -> Result<Self, Error> {
        self.push_param(param);
        self.validate()?;
        Ok(self)
    }

    pub(crate) fn from_parts(
        name: Cow<'a, StringRef>,
        params: Vec<ComponentParam<'a>>,
    ) -> Result<Self, Error> {
        let id = ComponentId { name, params };
        id.validate()?;
        Ok(id)
    }

    /// Adds `param`, replacing a parameter with the same key in place (structured-field
    /// parameters are an ordered map).
    pub(crate) fn push_param(&mut self, param: ComponentParam<'a>) {
        match self.params.iter_mut().find(|p| p.key() == param.key()) {
            Some(slot) => *slot = param,
            None => self.params.push(param),
        }
    }

    /// Checks what can be checked without a message: derived names are known, field
    /// names are lowercase, parameters fit the component.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let name = self.name();
        if name.is_empty() {
            return Err(invalid(name, "empty component name"));
        }
        if name.starts_with('@') {
            let Some(derived) = Derived::from_name(name) else {
                return Err(self.unsupported("unknown derived component"));
            };
            for p in &self.params {
                match p {
                    ComponentParam::Req => {}
                    ComponentParam::Name(_) if derived == Derived::QueryParam => {}
                    other => {
                        return Err(self.unsupported(&format!(
                            "parameter {} does not apply to a derived component",
                            other.key().as_str()
                        )));
                    }
                }
            }
            if derived == Derived::QueryParam && self.query_param_name().is_none() {
                return Err(self.unsupported("@query-param needs a name parameter"));
            }
        } else {
            // Field names are tokens; RFC 9421 §2.1 requires them lowercased.
            let token = name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            });
            if !token {
                return Err(invalid(name, "field names must be lowercase tokens"));
            }
            let has = |k: &str| self.params.iter().any(|p| p.key().as_str() == k);
            if has("name") {
                return Err(self.unsupported("parameter name only applies to @query-param"));
            }
            if has("bs") && (has("sf") || has("key")) {
                return Err(self.unsupported("bs cannot be combined with sf or key"));
            }
        }
        Ok(())
    }

    /// The component name: `@method`, `content-type`, ….
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    pub(crate) fn name_sf(&self) -> &StringRef {
        &self.name
    }

    /// The parameters in order.
    pub fn params(&self) -> &[ComponentParam<'a>] {
        &self.params
    }

    /// Whether this is a derived component (`@…`).
    pub fn is_derived(&self) -> bool {
        self.name().starts_with('@')
    }

    pub(crate) fn derived(&self) -> Option<Derived> {
        Derived::from_name(self.name())
    }

    /// Whether the identifier is exactly `name` with no parameters: what the policy's
    /// required components mean.
    pub fn is_plain(&self, name: &str) -> bool {
        self.params.is_empty() && self.name() == name
    }

    pub(crate) fn has(&self, wanted: &ComponentParam<'_>) -> bool {
        self.params.iter().any(|p| p.key() == wanted.key())
    }

    pub(crate) fn dict_key(&self) -> Option<&str> {
        self.params.iter().find_map(|p| match p {
            ComponentParam::Key(k) => Some(k.as_str()),
            _ => None,
        })
    }

    pub(crate) fn query_param_name(&self) -> Option<&str> {
        self.params.iter().find_map(|p| match p {
            ComponentParam::Name(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Owns every borrowed part.
    pub fn into_owned(self) -> ComponentId<'static> {
        ComponentId {
            name: Cow::Owned(self.name.into_owned()),
            params: self
                .params
                .into_iter()
                .map(ComponentParam::into_owned)
                .collect(),
        }
    }

    /// Writes the parameters after the bare item a serializer just wrote.
    pub(crate) fn write_params<'s>(
        &self,
        mut ser: ParameterSerializer<&'s mut String>,
    ) -> ParameterSerializer<&'s mut String> {
        for p in &self.params {
            ser = match p {
                ComponentParam::Key(v) | ComponentParam::Name(v) => {
                    ser.parameter(p.key(), v.as_ref())
                }
                _ => ser.parameter(p.key(), true),
            };
        }
        ser
    }

    /// The identifier as a structured-field item (`"@query-param";name="id"`), as it
    /// opens its line of the signature base.
    pub(crate) fn write_sf(&self, out: &mut String) {
        let ser = sfv::ItemSerializer::with_buffer(out).bare_item(self.name.as_ref());
        let _ = self.write_params(ser);
    }

    pub(crate) fn unsupported(&self, reason: &str) -> Error {
        Error::UnsupportedComponent {
            component: self.to_string(),
            reason: reason.to_owned(),
        }
    }

    pub(crate) fn absent(&self, reason: &str) -> Error {
        Error::ComponentNotInMessage {
            component: self.to_string(),
            reason: reason.to_owned(),
        }
    }
}

fn invalid(name: &str, reason: &str) -> Error {
    Error::InvalidParameters(format!("component {name:?}: {reason}"))
}

impl fmt::Display for ComponentId<'_> {
    /// The structured-field serialization, `"content-type"` or `"@query-param";name="id"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_sf(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for ComponentId<'static> {
    type Err = Error;

    /// Parses `"@query-param";name="id"` (an sf-item) or the same without quotes around
    /// the name (`@query-param;name="id"`, `content-type`), as a command line gives it.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let quoted;
        let text = if s.starts_with('"') {
            s
        } else {
            let (name, rest) = s.split_at(s.find(';').unwrap_or(s.len()));
            quoted = format!("\"{name}\"{rest}");
            &quoted
        };
        let mut target = Vec::with_capacity(1);
        let mut err = None;
        sfv::Parser::new(text)
            .parse_item_with_visitor(ComponentVisitor {
                target: &mut target,
                err: &mut err,
            })
            .map_err(|e| match err.take() {
                Some(Error::MalformedSignatureInput(m)) => Error::InvalidParameters(m),
                Some(e) => e,
                None => Error::InvalidParameters(format!("component {s:?}: {e}")),
            })?;
        let id = target
            .pop()
            .ok_or_else(|| Error::InvalidParameters(format!("component {s:?}")))?;
        Ok(id.into_owned())
    }
}

/// Marks a visitor error whose typed cause sits in the visitor's error slot.
#[derive(Debug)]
pub(crate) struct Abort;

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid component")
    }
}

impl std::error::Error for Abort {}

/// Reads one component identifier (an sf-string with parameters) and appends it to
/// `target`, leaving a typed error in `err` when the item is not a valid one.
pub(crate) struct ComponentVisitor<'v, 'de> {
    pub(crate) target: &'v mut Vec<ComponentId<'de>>,
    pub(crate) err: &'v mut Option<Error>,
}

impl<'v, 'de> ItemVisitor<'de> for ComponentVisitor<'v, 'de> {
    type Out = ();
    type Error = Abort;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Abort> {
        let BareItemFromInput::String(name) = bare_item else {
            *self.err = Some(Error::MalformedSignatureInput(
                "a covered component is not a string".into(),
            ));
            return Err(Abort);
        };
        self.target.push(ComponentId {
            name,
            params: Vec::new(),
        });
        let id = self.target.last_mut().ok_or(Abort)?;
        Ok(ComponentParamVisitor { id, err: self.err })
    }
}

struct ComponentParamVisitor<'v, 'de> {
    id: &'v mut ComponentId<'de>,
    err: &'v mut Option<Error>,
}

impl<'de> ParameterVisitor<'de> for ComponentParamVisitor<'_, 'de> {
    type Out = ();
    type Error = Abort;

    fn parameter(&mut self, key: &'de KeyRef, value: BareItemFromInput<'de>) -> Result<(), Abort> {
        let param = match (key.as_str(), value) {
            ("sf", BareItemFromInput::Boolean(true)) => ComponentParam::Sf,
            ("bs", BareItemFromInput::Boolean(true)) => ComponentParam::Bs,
            ("req", BareItemFromInput::Boolean(true)) => ComponentParam::Req,
            ("tr", BareItemFromInput::Boolean(true)) => ComponentParam::Tr,
            ("key", BareItemFromInput::String(s)) => ComponentParam::Key(s),
            ("name", BareItemFromInput::String(s)) => ComponentParam::Name(s),
            (k, _) => {
                *self.err = Some(
                    self.id
                        .unsupported(&format!("unknown or mistyped parameter {k}")),
                );
                return Err(Abort);
            }
        };
        self.id.push_param(param);
        Ok(())
    }

    fn finish(self) -> Result<(), Abort> {
        self.id.validate().map_err(|e| {
            // A bad name in a received field is a malformed field.
            *self.err = Some(match e {
                Error::InvalidParameters(m) => Error::MalformedSignatureInput(m),
                other => other,
            });
            Abort
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let id: ComponentId<'static> = input.parse().unwrap();
        assert_eq!(id.to_string(), expected);
    }

    #[test]
    fn parses_command_line_forms() {
        check("@method", r#""@method""#);
        check(r#""@method""#, r#""@method""#);
        check(r#"@query-param;name="Pet""#, r#""@query-param";name="Pet""#);
        check("content-digest", r#""content-digest""#);
        check(r#"example-dict;key="a""#, r#""example-dict";key="a""#);
        check("example-dict;sf;req", r#""example-dict";sf;req"#);
    }

    #[test]
    fn rejects_invalid_identifiers() {
        for bad in [
            "@unknown",
            "Content-Type",
            "@query-param",
            "@path;sf",
            "x;bs;sf",
            "x;foo",
            "x;name=\"a\"",
            "",
        ] {
            assert!(bad.parse::<ComponentId<'static>>().is_err(), "{bad}");
        }
    }
}
