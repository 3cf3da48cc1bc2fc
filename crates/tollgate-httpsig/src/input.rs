//! `Signature-Input` and `Signature` (RFC 9421 §4): parsed with sfv's borrowing visitors,
//! so a request's signature metadata costs a few small vectors and no string copies.

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;
use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, Ignored, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{BareItem, BareItemFromInput, Integer, KeyRef, StringRef, key_ref};

use crate::component::{Abort, ComponentId, ComponentVisitor};
use crate::{Algorithm, Error};

/// A signature parameter (RFC 9421 §2.3), in the order it was written.
#[derive(Debug, Clone, PartialEq)]
pub enum SigParam<'a> {
    /// `created`: Unix seconds.
    Created(Integer),
    /// `expires`: Unix seconds.
    Expires(Integer),
    /// `nonce`.
    Nonce(Cow<'a, StringRef>),
    /// `alg`: an algorithm name from the IANA registry.
    Alg(Cow<'a, StringRef>),
    /// `keyid`.
    KeyId(Cow<'a, StringRef>),
    /// `tag`.
    Tag(Cow<'a, StringRef>),
    /// A parameter this crate does not interpret; kept so the signature base reproduces
    /// what the signer wrote.
    Other(Cow<'a, KeyRef>, BareItem),
}

impl SigParam<'_> {
    fn key(&self) -> &KeyRef {
        match self {
            SigParam::Created(_) => key_ref("created"),
            SigParam::Expires(_) => key_ref("expires"),
            SigParam::Nonce(_) => key_ref("nonce"),
            SigParam::Alg(_) => key_ref("alg"),
            SigParam::KeyId(_) => key_ref("keyid"),
            SigParam::Tag(_) => key_ref("tag"),
            SigParam::Other(k, _) => k,
        }
    }
}

/// One signature's metadata: its label, covered components and parameters — one member
/// of `Signature-Input`, and the `@signature-params` line of its signature base.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureInput<'a> {
    label: Cow<'a, KeyRef>,
    components: Vec<ComponentId<'a>>,
    params: Vec<SigParam<'a>>,
}

impl<'a> SignatureInput<'a> {
    /// A signature labelled `label` (a structured-field key: lowercase, digits, `_-.*`)
    /// covering `components` in order; add parameters with the `with_*` methods.
    pub fn new(label: &'a str, components: Vec<ComponentId<'a>>) -> Result<Self, Error> {
        let label = KeyRef::from_str(label)
            .map_err(|e| Error::InvalidParameters(format!("label {label:?}: {e}")))?;
        let input = SignatureInput {
            label: Cow::Borrowed(label),
            components,
            params: Vec::new(),
        };
        input.check_components().map_err(|e| match e {
            Error::MalformedSignatureInput(m) => Error::InvalidParameters(m),
            other => other,
        })?;
        Ok(input)
    }

    /// Sets `created` (Unix seconds).
    pub fn with_created(self, unix: i64) -> Result<Self, Error> {
        Ok(self.with(SigParam::Created(integer("created", unix)?)))
    }

    /// Sets `expires` (Unix seconds).
    pub fn with_expires(self, unix: i64) -> Result<Self, Error> {
        Ok(self.with(SigParam::Expires(integer("expires", unix)?)))
    }

    /// Sets `nonce`.
    pub fn with_nonce(self, nonce: &'a str) -> Result<Self, Error> {
        Ok(self.with(SigParam::Nonce(string("nonce", nonce)?)))
    }

    /// Sets `keyid`.
    pub fn with_keyid(self, keyid: &'a str) -> Result<Self, Error> {
        Ok(self.with(SigParam::KeyId(string("keyid", keyid)?)))
    }

    /// Sets `tag`.
    pub fn with_tag(self, tag: &'a str) -> Result<Self, Error> {
        Ok(self.with(SigParam::Tag(string("tag", tag)?)))
    }

    /// Sets `alg`.
    pub fn with_alg(self, alg: Algorithm) -> Self {
        self.with(SigParam::Alg(Cow::Borrowed(StringRef::constant(
            alg.name(),
        ))))
    }

    fn with(mut self, param: SigParam<'a>) -> Self {
        push_param(&mut self.params, param);
        self
    }

    /// RFC 9421 §2.5: a component appears at most once; `@signature-params` never.
    fn check_components(&self) -> Result<(), Error> {
        for (i, c) in self.components.iter().enumerate() {
            if c.name() == "@signature-params" {
                return Err(Error::MalformedSignatureInput(
                    "@signature-params cannot be a covered component".into(),
                ));
            }
            if self.components[..i].contains(c) {
                return Err(Error::MalformedSignatureInput(format!(
                    "component {c} is covered twice"
                )));
            }
        }
        Ok(())
    }

    /// The label (the dictionary key in `Signature-Input` and `Signature`).
    pub fn label(&self) -> &str {
        self.label.as_str()
    }

    /// The covered components, in signature-base order.
    pub fn components(&self) -> &[ComponentId<'a>] {
        &self.components
    }

    /// Whether a component named `name` without parameters is covered.
    pub fn covers(&self, name: &str) -> bool {
        self.components.iter().any(|c| c.is_plain(name))
    }

    /// The parameters in order.
    pub fn params(&self) -> &[SigParam<'a>] {
        &self.params
    }

    /// `created`, Unix seconds.
    pub fn created(&self) -> Option<i64> {
        self.params.iter().find_map(|p| match p {
            SigParam::Created(v) => Some(i64::from(*v)),
            _ => None,
        })
    }

    /// `expires`, Unix seconds.
    pub fn expires(&self) -> Option<i64> {
        self.params.iter().find_map(|p| match p {
            SigParam::Expires(v) => Some(i64::from(*v)),
            _ => None,
        })
    }

    /// `nonce`.
    pub fn nonce(&self) -> Option<&str> {
        self.string_param(|p| matches!(p, SigParam::Nonce(_)))
    }

    /// `alg`, as written.
    pub fn alg(&self) -> Option<&str> {
        self.string_param(|p| matches!(p, SigParam::Alg(_)))
    }

    /// `keyid`.
    pub fn keyid(&self) -> Option<&str> {
        self.string_param(|p| matches!(p, SigParam::KeyId(_)))
    }

    /// `tag`.
    pub fn tag(&self) -> Option<&str> {
        self.string_param(|p| matches!(p, SigParam::Tag(_)))
    }

    fn string_param(&self, which: impl Fn(&SigParam<'_>) -> bool) -> Option<&str> {
        self.params.iter().find(|p| which(p)).and_then(|p| match p {
            SigParam::Nonce(s) | SigParam::Alg(s) | SigParam::KeyId(s) | SigParam::Tag(s) => {
                Some(s.as_str())
            }
            _ => None,
        })
    }

    /// Appends the `@signature-params` value — the inner list of components with the
    /// parameters — serialized by sfv.
    pub(crate) fn write_params_value(&self, out: &mut String) {
        let mut list = sfv::ListSerializer::with_buffer(out);
        self.write_inner_list(list.inner_list());
    }

    fn write_inner_list(&self, mut ser: sfv::InnerListSerializer<'_>) {
        for c in &self.components {
            let item = ser.bare_item(c.name_sf());
            let _ = c.write_params(item);
        }
        let mut params = ser.finish();
        for p in &self.params {
            params = match p {
                SigParam::Created(v) | SigParam::Expires(v) => params.parameter(p.key(), *v),
                SigParam::Nonce(s) | SigParam::Alg(s) | SigParam::KeyId(s) | SigParam::Tag(s) => {
                    params.parameter(p.key(), s.as_ref())
                }
                SigParam::Other(k, v) => params.parameter(k, v),
            };
        }
    }

    /// The `@signature-params` value: `("@method" "@path");created=…;keyid="…"`.
    pub fn params_value(&self) -> String {
        let mut s = String::new();
        self.write_params_value(&mut s);
        s
    }

    /// This signature as a `Signature-Input` dictionary member: `label=(…);…`.
    pub fn field_member(&self) -> String {
        let mut dict = sfv::DictSerializer::new();
        self.write_inner_list(dict.inner_list(&self.label));
        dict.finish().unwrap_or_default()
    }

    /// Owns every borrowed part.
    pub fn into_owned(self) -> SignatureInput<'static> {
        SignatureInput {
            label: Cow::Owned(self.label.into_owned()),
            components: self
                .components
                .into_iter()
                .map(ComponentId::into_owned)
                .collect(),
            params: self
                .params
                .into_iter()
                .map(|p| match p {
                    SigParam::Created(v) => SigParam::Created(v),
                    SigParam::Expires(v) => SigParam::Expires(v),
                    SigParam::Nonce(s) => SigParam::Nonce(Cow::Owned(s.into_owned())),
                    SigParam::Alg(s) => SigParam::Alg(Cow::Owned(s.into_owned())),
                    SigParam::KeyId(s) => SigParam::KeyId(Cow::Owned(s.into_owned())),
                    SigParam::Tag(s) => SigParam::Tag(Cow::Owned(s.into_owned())),
                    SigParam::Other(k, v) => SigParam::Other(Cow::Owned(k.into_owned()), v),
                })
                .collect(),
        }
    }
}

impl fmt::Display for SignatureInput<'_> {
    /// The `Signature-Input` member.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field_member())
    }
}

fn integer(what: &str, v: i64) -> Result<Integer, Error> {
    Integer::try_from(v).map_err(|e| Error::InvalidParameters(format!("{what} {v}: {e}")))
}

fn string<'a>(what: &str, v: &'a str) -> Result<Cow<'a, StringRef>, Error> {
    StringRef::from_str(v)
        .map(Cow::Borrowed)
        .map_err(|e| Error::InvalidParameters(format!("{what} {v:?}: {e}")))
}

/// Structured-field parameters are an ordered map: a repeated key keeps its first
/// position and takes the last value.
fn push_param<'a>(params: &mut Vec<SigParam<'a>>, param: SigParam<'a>) {
    match params.iter_mut().find(|p| p.key() == param.key()) {
        Some(slot) => *slot = param,
        None => params.push(param),
    }
}

/// The signatures of one message: every `Signature-Input` member with its `Signature`
/// value, borrowed from the header map.
#[derive(Debug, Clone, Default)]
pub struct Signatures<'h> {
    inputs: Vec<SignatureInput<'h>>,
    values: Vec<(&'h KeyRef, Option<Vec<u8>>)>,
}

impl<'h> Signatures<'h> {
    /// Parses `Signature-Input` and `Signature` (each possibly over several field
    /// lines). A message with neither has no signatures; one with only one of them is
    /// [`Error::MissingSignature`].
    pub fn parse(headers: &'h HeaderMap) -> Result<Self, Error> {
        let mut out = Signatures::default();
        let mut err = None;
        for line in headers.get_all("signature-input") {
            let text = field_str(line.as_bytes()).ok_or_else(|| {
                Error::MalformedSignatureInput("field is not visible ASCII".into())
            })?;
            sfv::Parser::new(text)
                .parse_dictionary_with_visitor(InputsVisitor {
                    inputs: &mut out.inputs,
                    err: &mut err,
                })
                .map_err(|e| {
                    err.take()
                        .unwrap_or_else(|| Error::MalformedSignatureInput(e.to_string()))
                })?;
        }
        for line in headers.get_all("signature") {
            let text = field_str(line.as_bytes())
                .ok_or_else(|| Error::MalformedSignature("field is not visible ASCII".into()))?;
            sfv::Parser::new(text)
                .parse_dictionary_with_visitor(ValuesVisitor {
                    values: &mut out.values,
                })
                .map_err(|e| Error::MalformedSignature(e.to_string()))?;
        }
        match (out.inputs.is_empty(), out.values.is_empty()) {
            (false, true) | (true, false) => Err(Error::MissingSignature { label: None }),
            _ => Ok(out),
        }
    }

    /// Whether the message carries no signature.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Every `Signature-Input` member, in field order.
    pub fn inputs(&self) -> &[SignatureInput<'h>] {
        &self.inputs
    }

    /// The signature labelled `label`: its input and its signature bytes.
    pub fn get(&self, label: &str) -> Result<(&SignatureInput<'h>, &[u8]), Error> {
        let missing = || Error::MissingSignature {
            label: Some(label.to_owned()),
        };
        let input = self
            .inputs
            .iter()
            .find(|i| i.label() == label)
            .ok_or_else(missing)?;
        let value = self
            .values
            .iter()
            .find(|(l, _)| l.as_str() == label)
            .ok_or_else(missing)?;
        match &value.1 {
            Some(bytes) => Ok((input, bytes)),
            None => Err(Error::MalformedSignature(format!(
                "{label} is not a byte sequence"
            ))),
        }
    }

    /// The first signature in `Signature-Input` order.
    pub fn first(&self) -> Result<(&SignatureInput<'h>, &[u8]), Error> {
        match self.inputs.first() {
            Some(input) => self.get(input.label()),
            None => Err(Error::MissingSignature { label: None }),
        }
    }
}

/// A field line as text: HTTP allows obs-text, structured fields do not.
fn field_str(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

struct InputsVisitor<'v, 'de> {
    inputs: &'v mut Vec<SignatureInput<'de>>,
    err: &'v mut Option<Error>,
}

impl<'de> DictionaryVisitor<'de> for InputsVisitor<'_, 'de> {
    type Out = ();
    type Error = Abort;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Abort> {
        // A repeated label keeps its position and takes the last value.
        let fresh = SignatureInput {
            label: Cow::Borrowed(key),
            components: Vec::new(),
            params: Vec::new(),
        };
        let index = match self.inputs.iter().position(|i| i.label.as_ref() == key) {
            Some(i) => {
                self.inputs[i] = fresh;
                i
            }
            None => {
                self.inputs.push(fresh);
                self.inputs.len() - 1
            }
        };
        Ok(InputEntry {
            input: &mut self.inputs[index],
            err: &mut *self.err,
        })
    }

    fn finish(self) -> Result<(), Abort> {
        for input in self.inputs.iter() {
            if let Err(e) = input.check_components() {
                *self.err = Some(e);
                return Err(Abort);
            }
        }
        Ok(())
    }
}

struct InputEntry<'v, 'de> {
    input: &'v mut SignatureInput<'de>,
    err: &'v mut Option<Error>,
}

impl<'de> EntryVisitor<'de> for InputEntry<'_, 'de> {
    type Error = Abort;

    fn item(self) -> Result<impl ItemVisitor<'de>, Abort> {
        *self.err = Some(Error::MalformedSignatureInput(format!(
            "{} is not an inner list",
            self.input.label()
        )));
        Err::<Ignored, _>(Abort)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Abort> {
        Ok(self)
    }
}

impl<'de> InnerListVisitor<'de> for InputEntry<'_, 'de> {
    type Error = Abort;

    fn item(&mut self) -> Result<impl ItemVisitor<'de>, Abort> {
        Ok(ComponentVisitor {
            target: &mut self.input.components,
            err: &mut *self.err,
        })
    }

    fn finish(self) -> Result<impl ParameterVisitor<'de>, Abort> {
        Ok(SigParamsVisitor {
            input: self.input,
            err: self.err,
        })
    }
}

struct SigParamsVisitor<'v, 'de> {
    input: &'v mut SignatureInput<'de>,
    err: &'v mut Option<Error>,
}

impl<'de> ParameterVisitor<'de> for SigParamsVisitor<'_, 'de> {
    type Out = ();
    type Error = Abort;

    fn parameter(&mut self, key: &'de KeyRef, value: BareItemFromInput<'de>) -> Result<(), Abort> {
        let param = match (key.as_str(), value) {
            ("created", BareItemFromInput::Integer(v)) => SigParam::Created(v),
            ("expires", BareItemFromInput::Integer(v)) => SigParam::Expires(v),
            ("nonce", BareItemFromInput::String(s)) => SigParam::Nonce(s),
            ("alg", BareItemFromInput::String(s)) => SigParam::Alg(s),
            ("keyid", BareItemFromInput::String(s)) => SigParam::KeyId(s),
            ("tag", BareItemFromInput::String(s)) => SigParam::Tag(s),
            ("created" | "expires" | "nonce" | "alg" | "keyid" | "tag", _) => {
                *self.err = Some(Error::MalformedSignatureInput(format!(
                    "{}: parameter {} has the wrong type",
                    self.input.label(),
                    key.as_str()
                )));
                return Err(Abort);
            }
            (_, other) => SigParam::Other(Cow::Borrowed(key), other.into()),
        };
        push_param(&mut self.input.params, param);
        Ok(())
    }

    fn finish(self) -> Result<(), Abort> {
        Ok(())
    }
}

/// Collects `Signature` members; a member that is not a byte sequence is kept as `None`
/// so that only using it fails.
struct ValuesVisitor<'v, 'de> {
    values: &'v mut Vec<(&'de KeyRef, Option<Vec<u8>>)>,
}

impl<'de> DictionaryVisitor<'de> for ValuesVisitor<'_, 'de> {
    type Out = ();
    type Error = Abort;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Abort> {
        let index = match self.values.iter().position(|(l, _)| *l == key) {
            Some(i) => {
                self.values[i].1 = None;
                i
            }
            None => {
                self.values.push((key, None));
                self.values.len() - 1
            }
        };
        Ok(ValueEntry {
            slot: &mut self.values[index].1,
        })
    }

    fn finish(self) -> Result<(), Abort> {
        Ok(())
    }
}

struct ValueEntry<'v> {
    slot: &'v mut Option<Vec<u8>>,
}

impl<'de> EntryVisitor<'de> for ValueEntry<'_> {
    type Error = Abort;

    fn item(self) -> Result<impl ItemVisitor<'de>, Abort> {
        Ok(move |bare: BareItemFromInput<'de>| {
            if let BareItemFromInput::ByteSequence(bytes) = bare {
                *self.slot = Some(bytes);
            }
            Ok::<_, Abort>(Ignored)
        })
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Abort> {
        Ok(Ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str, signature: &str) -> Result<Vec<String>, Error> {
        let mut headers = HeaderMap::new();
        for line in input.split('\n') {
            headers.append("signature-input", line.parse().unwrap());
        }
        headers.insert("signature", signature.parse().unwrap());
        let sigs = Signatures::parse(&headers)?;
        Ok(sigs
            .inputs()
            .iter()
            .map(SignatureInput::field_member)
            .collect())
    }

    fn check(input: &str, expected: Result<&[&str], &str>) {
        let got = parse(input, "a=:AA==:, b=:AA==:");
        match (got, expected) {
            (Ok(members), Ok(want)) => assert_eq!(members, want, "{input}"),
            (Err(e), Err(code)) => assert_eq!(e.code(), code, "{input}: {e}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_and_reserializes_signature_input() {
        check(
            r#"a=("@method" "x";sf "d";key="k");created=1;keyid="k1";foo=?0"#,
            Ok(&[r#"a=("@method" "x";sf "d";key="k");created=1;keyid="k1";foo=?0"#]),
        );
        // Several field lines form one dictionary; a repeated label keeps its place
        // and takes the last value.
        check(
            "a=();created=1\nb=(\"@path\")\na=();created=2",
            Ok(&["a=();created=2", r#"b=("@path")"#]),
        );
        // A repeated parameter keeps its place and takes the last value.
        check(
            "a=();created=1;keyid=\"x\";created=3",
            Ok(&[r#"a=();created=3;keyid="x""#]),
        );
    }

    #[test]
    fn rejects_invalid_signature_input() {
        check(r#"a=("@nope")"#, Err("signature-component-unsupported"));
        check(r#"a=("X-Upper")"#, Err("signature-malformed"));
        check(r#"a=("x";bs;sf)"#, Err("signature-component-unsupported"));
        check(r#"a=("x";foo)"#, Err("signature-component-unsupported"));
        check(r#"a=("@path" "@path")"#, Err("signature-malformed"));
        check(r#"a=(@path)"#, Err("signature-malformed"));
        check(r#"a="@path""#, Err("signature-malformed"));
        check(r#"a=();created="1""#, Err("signature-malformed"));
        check(r#"a=();keyid=k"#, Err("signature-malformed"));
        check("a=(", Err("signature-malformed"));
    }

    #[test]
    fn pairs_inputs_with_signatures() {
        let mut headers = HeaderMap::new();
        headers.insert("signature-input", "a=();created=1, b=()".parse().unwrap());
        headers.insert("signature", "a=:AQI=:, b=1".parse().unwrap());
        let sigs = Signatures::parse(&headers).unwrap();
        assert_eq!(sigs.first().unwrap().1, &[1, 2]);
        assert!(matches!(sigs.get("b"), Err(Error::MalformedSignature(_))));
        assert!(matches!(
            sigs.get("c"),
            Err(Error::MissingSignature { label: Some(_) })
        ));
        headers.remove("signature");
        assert!(matches!(
            Signatures::parse(&headers),
            Err(Error::MissingSignature { label: None })
        ));
        assert!(Signatures::parse(&HeaderMap::new()).unwrap().is_empty());
    }
}
