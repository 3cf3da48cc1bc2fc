//! Partial evaluation of policies in Cedar's JSON format (EST): the atoms a request
//! fact decides (`context.minute < 1080`, `resource == Api::"a"`, …) and the folding of
//! `&&`, `||`, `!` and `when`/`unless` clauses once some atoms are known.
//!
//! Folding keeps Cedar's semantics exactly, errors included:
//! - a known atom is one Cedar would evaluate without error to that value: the request
//!   context always has the required attributes, with the schema's types; an atom on an
//!   optional attribute the request lacks (which would fail) stays unknown, except
//!   `context has a`, which is then `false`;
//! - `false && e` and `true || e` drop an `e` Cedar does not evaluate either;
//! - `true && e`, `e && true`, `false || e` and `e || false` become `e`: the policies are
//!   validated in strict mode, so `e` is a boolean (or fails, as it still does);
//! - `e && false` and `e || true` are kept (`e` could fail);
//! - a clause that always holds goes; a policy whose clause never holds goes when no
//!   clause before it can fail (scope constraints cannot), else the clause is kept as
//!   `when { false }` and the ones after it (which Cedar never evaluates) go.
//!
//! Anything else is kept as it is, for Cedar to evaluate at request time.

use serde_json::Value;

/// The context attributes of [`crate::SCHEMA_TEXT`], in the order of its declaration.
pub(crate) const CONTEXT_ATTRS: [&str; 11] = [
    "operation",
    "subscription",
    "weekday",
    "minute",
    "date",
    "region",
    "scopes",
    "auth_method",
    "data_categories",
    "purpose",
    "consent",
];

/// One of [`CONTEXT_ATTRS`] (the discriminant is its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Attr {
    Operation,
    Subscription,
    Weekday,
    Minute,
    Date,
    Region,
    Scopes,
    AuthMethod,
    DataCategories,
    Purpose,
    Consent,
}

/// An attribute's type in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    String,
    /// `String`, optional.
    OptString,
    Long,
    /// `Set<String>`.
    Strings,
    /// An entity: decided by entity data, never folded.
    Entity,
}

impl Attr {
    pub(crate) const ALL: [Attr; 11] = [
        Attr::Operation,
        Attr::Subscription,
        Attr::Weekday,
        Attr::Minute,
        Attr::Date,
        Attr::Region,
        Attr::Scopes,
        Attr::AuthMethod,
        Attr::DataCategories,
        Attr::Purpose,
        Attr::Consent,
    ];

    pub(crate) fn name(self) -> &'static str {
        CONTEXT_ATTRS[self as usize]
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    pub(crate) fn ty(self) -> Type {
        match self {
            Attr::Operation | Attr::Date | Attr::AuthMethod => Type::String,
            Attr::Region | Attr::Purpose => Type::OptString,
            Attr::Weekday | Attr::Minute => Type::Long,
            Attr::Scopes | Attr::DataCategories | Attr::Consent => Type::Strings,
            Attr::Subscription => Type::Entity,
        }
    }
}

/// A set of context attributes: the ones some policy of a set reads, i.e. the only ones
/// a request evaluated by that set needs. A policy cannot observe an attribute it does
/// not name (Cedar has no dynamic attribute access), so leaving the others out of the
/// context changes no decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attrs(u16);

impl Attrs {
    pub(crate) const ALL: Self = Self((1 << CONTEXT_ATTRS.len()) - 1);
    pub(crate) const NONE: Self = Self(0);

    pub(crate) fn has(self, attr: Attr) -> bool {
        self.0 & (1 << attr as u16) != 0
    }

    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    fn add(&mut self, name: &str) {
        match Attr::named(name) {
            Some(a) => self.0 |= 1 << a as u16,
            // Not an attribute of the schema (validation would have refused it): keep all.
            None => *self = Self::ALL,
        }
    }

    /// Adds the context attributes `policy` (EST JSON) reads; all of them if it uses
    /// `context` other than as `context.a` or `context has a`.
    pub(crate) fn add_read_by(&mut self, policy: &Value) {
        match policy {
            Value::Object(map) => {
                if let Some((kind, body)) = node(policy) {
                    match kind {
                        // A literal: nothing inside is an expression.
                        "Value" => return,
                        "Var" if body == "context" => {
                            *self = Self::ALL;
                            return;
                        }
                        "." | "has" if is_var(&body["left"], "context") => {
                            match &body["attr"] {
                                Value::String(a) => self.add(a),
                                // `context has a.b`: the first name is the context's.
                                Value::Array(path) => match path.first().and_then(Value::as_str) {
                                    Some(a) => self.add(a),
                                    None => *self = Self::ALL,
                                },
                                _ => *self = Self::ALL,
                            }
                            return;
                        }
                        _ => {}
                    }
                }
                for v in map.values() {
                    self.add_read_by(v);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.add_read_by(v);
                }
            }
            _ => {}
        }
    }
}

/// A comparison of a `Long` attribute with a literal, the attribute on the left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    pub(crate) fn eval(self, x: i128, n: i128) -> bool {
        match self {
            Cmp::Lt => x < n,
            Cmp::Le => x <= n,
            Cmp::Gt => x > n,
            Cmp::Ge => x >= n,
            Cmp::Eq => x == n,
        }
    }

    /// `n OP x` as `x OP' n`.
    fn mirrored(self) -> Self {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            Cmp::Eq => Cmp::Eq,
        }
    }
}

/// A test of one request fact against literals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Atom<'a> {
    /// `resource == Api::"<id>"`.
    Resource(&'a str),
    /// `context has a`.
    Has(Attr),
    /// `context.a == "s"` (a string attribute).
    StrEq(Attr, &'a str),
    /// `["s", …].contains(context.a)` (a string attribute).
    StrIn(Attr, Vec<&'a str>),
    /// `context.a OP n` (a `Long` attribute).
    Cmp(Attr, Cmp, i64),
    /// `context.a.contains("s")` (a `Set<String>` attribute).
    SetHas(Attr, &'a str),
}

/// The single `(key, body)` of an EST expression node.
pub(crate) fn node(e: &Value) -> Option<(&str, &Value)> {
    let map = e.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn is_var(e: &Value, name: &str) -> bool {
    matches!(node(e), Some(("Var", Value::String(v))) if v == name)
}

fn boolean(e: &Value) -> Option<bool> {
    match node(e) {
        Some(("Value", Value::Bool(b))) => Some(*b),
        _ => None,
    }
}

fn literal(b: bool) -> Value {
    object([("Value", Value::Bool(b))])
}

/// A JSON object of `entries`, moved in (`json!` would copy interpolated values through
/// `Serialize`, which made folding quadratic).
fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn binary(kind: &str, left: Value, right: Value) -> Value {
    object([(kind, object([("left", left), ("right", right)]))])
}

/// `context.<a>` of an attribute of type `ty`.
fn context_attr(e: &Value, ty: impl Fn(Type) -> bool) -> Option<Attr> {
    match node(e)? {
        (".", body) if is_var(&body["left"], "context") => {
            let attr = Attr::named(body["attr"].as_str()?)?;
            ty(attr.ty()).then_some(attr)
        }
        _ => None,
    }
}

fn string(e: &Value) -> Option<&str> {
    match node(e)? {
        ("Value", Value::String(s)) => Some(s),
        _ => None,
    }
}

fn long(e: &Value) -> Option<i64> {
    match node(e)? {
        ("Value", Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

/// `Api::"<id>"`.
fn api_entity(e: &Value) -> Option<&str> {
    match node(e)? {
        ("Value", v) if v["__entity"]["type"] == "Api" => v["__entity"]["id"].as_str(),
        _ => None,
    }
}

fn is_string(t: Type) -> bool {
    matches!(t, Type::String | Type::OptString)
}

/// The atom `e` is, if it is one.
pub(crate) fn atom(e: &Value) -> Option<Atom<'_>> {
    let (kind, body) = node(e)?;
    if kind == "has" {
        let attr = Attr::named(body["attr"].as_str()?)?;
        return is_var(&body["left"], "context").then_some(Atom::Has(attr));
    }
    let (left, right) = (body.get("left")?, body.get("right")?);
    let cmp = match kind {
        "==" => Cmp::Eq,
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        ">" => Cmp::Gt,
        ">=" => Cmp::Ge,
        "contains" => {
            if let Some(attr) = context_attr(right, is_string) {
                return match node(left)? {
                    ("Set", Value::Array(items)) => items
                        .iter()
                        .map(string)
                        .collect::<Option<Vec<_>>>()
                        .map(|set| Atom::StrIn(attr, set)),
                    _ => None,
                };
            }
            let attr = context_attr(left, |t| t == Type::Strings)?;
            return string(right).map(|s| Atom::SetHas(attr, s));
        }
        _ => return None,
    };
    for (a, b, cmp) in [(left, right, cmp), (right, left, cmp.mirrored())] {
        if cmp == Cmp::Eq {
            if is_var(a, "resource")
                && let Some(api) = api_entity(b)
            {
                return Some(Atom::Resource(api));
            }
            if let (Some(attr), Some(s)) = (context_attr(a, is_string), string(b)) {
                return Some(Atom::StrEq(attr, s));
            }
        }
        if let (Some(attr), Some(n)) = (context_attr(a, |t| t == Type::Long), long(b)) {
            return Some(Atom::Cmp(attr, cmp, n));
        }
    }
    None
}

/// Calls `f` with every atom of `e` (a policy or an expression).
pub(crate) fn atoms<'a>(e: &'a Value, f: &mut impl FnMut(Atom<'a>)) {
    if matches!(node(e), Some(("Value", _))) {
        return;
    }
    if let Some(a) = atom(e) {
        f(a);
        return;
    }
    match e {
        Value::Object(map) => map.values().for_each(|v| atoms(v, f)),
        Value::Array(items) => items.iter().for_each(|v| atoms(v, f)),
        _ => {}
    }
}

/// `e` with the atoms `known` decides replaced by their value and the boolean
/// connectives over literals folded.
pub(crate) fn fold_expr(e: &Value, known: &impl Fn(&Atom<'_>) -> Option<bool>) -> Value {
    if let Some(value) = atom(e).and_then(|a| known(&a)) {
        return literal(value);
    }
    let Some((kind, body)) = node(e) else {
        return e.clone();
    };
    match kind {
        "&&" => {
            let left = fold_expr(&body["left"], known);
            if boolean(&left) == Some(false) {
                return literal(false);
            }
            let right = fold_expr(&body["right"], known);
            match (boolean(&left), boolean(&right)) {
                (Some(true), _) => right,
                (_, Some(true)) => left,
                _ => binary("&&", left, right),
            }
        }
        "||" => {
            let left = fold_expr(&body["left"], known);
            if boolean(&left) == Some(true) {
                return literal(true);
            }
            let right = fold_expr(&body["right"], known);
            match (boolean(&left), boolean(&right)) {
                (Some(false), _) => right,
                (_, Some(false)) => left,
                _ => binary("||", left, right),
            }
        }
        "!" => {
            let arg = fold_expr(&body["arg"], known);
            match boolean(&arg) {
                Some(b) => literal(!b),
                None => object([("!", object([("arg", arg)]))]),
            }
        }
        _ => e.clone(),
    }
}

/// `policy` folded; `None` when it can neither be satisfied nor fail.
pub(crate) fn fold_policy(
    policy: &Value,
    known: &impl Fn(&Atom<'_>) -> Option<bool>,
) -> Option<Value> {
    let clauses = policy.get("conditions")?.as_array()?;
    let mut kept = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let when = clause["kind"] == "when";
        let body = fold_expr(&clause["body"], known);
        match boolean(&body) {
            // Always holds: the clause can go.
            Some(b) if b == when => {}
            // Never holds. The clauses are evaluated in order after the scope, which
            // cannot fail: with no clause before it, the policy can never fire or fail.
            Some(_) => {
                if kept.is_empty() {
                    return None;
                }
                kept.push(object([
                    ("kind", Value::from("when")),
                    ("body", literal(false)),
                ]));
                break;
            }
            None => kept.push(object([("kind", clause["kind"].clone()), ("body", body)])),
        }
    }
    let mut folded: serde_json::Map<String, Value> = policy
        .as_object()?
        .iter()
        .filter(|(k, _)| *k != "conditions")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    folded.insert("conditions".to_owned(), Value::Array(kept));
    Some(Value::Object(folded))
}

/// Whether `policy` is satisfied by every request: a `forbid` or `permit` on any
/// principal, action and resource, without clauses.
pub(crate) fn always(policy: &Value) -> bool {
    ["principal", "action", "resource"]
        .iter()
        .all(|s| policy[s]["op"] == "All")
        && policy["conditions"].as_array().is_some_and(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use cedar_policy::Policy;
    use serde_json::json;

    use super::*;

    fn expr(src: &str) -> Value {
        let text = format!("permit (principal, action, resource) when {{ {src} }};");
        let policy: Policy = text.parse().unwrap();
        policy.to_json().unwrap()["conditions"][0]["body"].clone()
    }

    /// Folds with `api` `a`, operation `y`, minute 600, scopes `{s}`, no region.
    fn known(a: &Atom<'_>) -> Option<bool> {
        match a {
            Atom::Resource(api) => Some(*api == "a"),
            Atom::StrEq(Attr::Operation, op) => Some(*op == "y"),
            Atom::StrIn(Attr::Operation, ops) => Some(ops.contains(&"y")),
            Atom::Cmp(Attr::Minute, cmp, n) => Some(cmp.eval(600, i128::from(*n))),
            Atom::SetHas(Attr::Scopes, s) => Some(*s == "s"),
            Atom::Has(Attr::Region) => Some(false),
            _ => None,
        }
    }

    fn check(src: &str, expected: &str) {
        assert_eq!(fold_expr(&expr(src), &known), expr(expected), "{src}");
    }

    #[test]
    fn atoms_are_recognised() {
        let one = |src: &str| {
            let e = expr(src);
            let mut found = Vec::new();
            atoms(&e, &mut |a| found.push(format!("{a:?}")));
            found.join(" ")
        };
        assert_eq!(one(r#"resource == Api::"a""#), r#"Resource("a")"#);
        assert_eq!(one(r#"Api::"a" == resource"#), r#"Resource("a")"#);
        assert_eq!(one("400 <= context.minute"), "Cmp(Minute, Ge, 400)");
        assert_eq!(one("context.weekday > 5"), "Cmp(Weekday, Gt, 5)");
        assert_eq!(
            one(r#"["x", "y"].contains(context.region)"#),
            r#"StrIn(Region, ["x", "y"])"#
        );
        assert_eq!(
            one(r#"context has purpose && context.purpose == "p""#),
            r#"Has(Purpose) StrEq(Purpose, "p")"#
        );
        assert_eq!(
            one(r#"context.consent.contains("c")"#),
            r#"SetHas(Consent, "c")"#
        );
        // Not atoms: an entity attribute, a `Long` compared with a string, `like`.
        assert_eq!(one("context.subscription.active"), "");
        assert_eq!(one(r#"context.operation like "get*""#), "");
        assert_eq!(one(r#"context.operation != "x""#), "");
    }

    #[test]
    fn folds_atoms_and_connectives() {
        let grant = r#"(resource == Api::"a" && (context.operation == "x" || context.operation == "y")) || (resource == Api::"b" && context.operation == "z")"#;
        check(grant, "true");
        check(
            r#"["x", "y"].contains(context.operation) && context.auth_method == "k""#,
            r#"context.auth_method == "k""#,
        );
        check(
            "context.minute >= 480 && context.minute < 540 || context.weekday == 6",
            "context.weekday == 6",
        );
        check(r#"!context.scopes.contains("s")"#, "false");
        // An absent optional attribute: `has` is false, other atoms on it stay.
        check(r#"context has region && context.region == "x""#, "false");
        check(r#"context.region == "x""#, r#"context.region == "x""#);
        // `e && false` and `e || true` keep `e`: it could fail.
        check(
            r#"context.subscription.active && context.operation == "x""#,
            "context.subscription.active && false",
        );
        check(
            r#"context.subscription.active || context.operation == "y""#,
            "context.subscription.active || true",
        );
    }

    #[test]
    fn policies_fold_clause_by_clause() {
        let policy = |src: &str| src.parse::<Policy>().unwrap().to_json().unwrap();
        let scope = policy(
            r#"forbid (principal, action, resource)
            when { resource == Api::"a" && context.operation == "x" }
            unless { context.subscription.active };"#,
        );
        // `when` never holds (the operation is `y`): the policy goes.
        assert_eq!(fold_policy(&scope, &known), None);
        let window = policy(
            r#"forbid (principal, action, resource)
            unless { context.minute >= 480 && context.minute < 540 };"#,
        );
        let folded = fold_policy(&window, &known).unwrap();
        assert!(always(&folded));
        let late = policy(
            r#"forbid (principal, action, resource)
            when { context.subscription.active }
            unless { context.minute > 500 }
            when { context.subscription.active };"#,
        );
        let folded = fold_policy(&late, &known).unwrap();
        assert_eq!(
            folded["conditions"],
            json!([
                { "kind": "when", "body": late["conditions"][0]["body"] },
                { "kind": "when", "body": { "Value": false } },
            ])
        );
    }

    #[test]
    fn attribute_names_follow_the_schema() {
        let schema = crate::SCHEMA_TEXT;
        let context = &schema[schema.find("context: {").unwrap()..];
        let declared: Vec<(&str, &str)> = context
            .lines()
            .skip(1)
            .map_while(|l| l.trim().split_once(':'))
            .map(|(n, t)| (n, t.trim().trim_end_matches(',')))
            .collect();
        let ours: Vec<(String, &str)> = Attr::ALL
            .iter()
            .map(|a| {
                let optional = if a.ty() == Type::OptString { "?" } else { "" };
                let ty = match a.ty() {
                    Type::String | Type::OptString => "String",
                    Type::Long => "Long",
                    Type::Strings => "Set<String>",
                    Type::Entity => "Subscription",
                };
                (format!("{}{optional}", a.name()), ty)
            })
            .collect();
        let ours: Vec<(&str, &str)> = ours.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        assert_eq!(declared, ours);
    }

    #[test]
    fn attributes_read() {
        let read = |src: &str| {
            let mut attrs = Attrs::NONE;
            attrs.add_read_by(&expr(src));
            Attr::ALL
                .iter()
                .filter(|a| attrs.has(**a))
                .map(|a| a.name())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read(r#"context has region && context.region == "x" && context.minute < 5"#),
            ["minute", "region"]
        );
        assert_eq!(read("context has purpose.x"), ["purpose"]);
        assert_eq!(read(r#"{ "context": 1 }.context == 1"#), Vec::<&str>::new());
        assert_eq!(read("context == context").len(), CONTEXT_ATTRS.len());
    }
}
