//! The Cedar schema every compiled plan and every operator policy is validated against.

use std::sync::OnceLock;

use cedar_policy::{EntityTypeName, EntityUid, Schema, Validator};

/// The Cedar schema (human syntax) of Tollgate's runtime authorization.
///
/// One fixed schema serves every plan: the API is the resource, the operation a context
/// string, and there is one action, `call`. That keeps the schema independent of the
/// catalog, so operator policies are validated once, and a plan's slice never has to
/// declare actions for operations it does not mention.
///
/// Per-subscription facts are entity data: an `Application` is `in` its `Org` and in each
/// of its `Subscription`s, a `Subscription` is `in` its `Plan` (one plan entity per plan
/// version, id `<plan_id>@<sheet_sha256>`) and carries `active`.
///
/// Context: `weekday` (1 = Monday … 7 = Sunday), `minute` (0–1439) and `date`
/// (`YYYY-MM-DD`) are local to the plan's time zone (UTC when the plan has no window),
/// computed outside Cedar; `region` is absent when the client IP matched no region;
/// `consent` holds the data categories the caller holds valid consent for.
pub const SCHEMA_TEXT: &str = r#"entity Org;
entity Plan;
entity Subscription in [Plan] {
  active: Bool,
};
entity Application in [Org, Subscription];
entity Api;

action call appliesTo {
  principal: [Application],
  resource: [Api],
  context: {
    operation: String,
    subscription: Subscription,
    weekday: Long,
    minute: Long,
    date: String,
    region?: String,
    scopes: Set<String>,
    auth_method: String,
    data_categories: Set<String>,
    purpose?: String,
    consent: Set<String>,
  },
};
"#;

struct Parsed {
    schema: Schema,
    validator: Validator,
    application: EntityTypeName,
    subscription: EntityTypeName,
    org: EntityTypeName,
    plan: EntityTypeName,
    api: EntityTypeName,
    call: EntityUid,
}

fn parsed() -> &'static Parsed {
    static PARSED: OnceLock<Parsed> = OnceLock::new();
    PARSED.get_or_init(|| {
        // The schema is a constant checked by the unit tests: failing here is a bug in
        // this crate, not an input error.
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA_TEXT).expect("built-in Cedar schema parses");
        let name = |n: &str| n.parse::<EntityTypeName>().expect("built-in type name");
        Parsed {
            validator: Validator::new(schema.clone()),
            schema,
            application: name("Application"),
            subscription: name("Subscription"),
            org: name("Org"),
            plan: name("Plan"),
            api: name("Api"),
            call: r#"Action::"call""#.parse().expect("built-in action"),
        }
    })
}

/// The parsed schema (built once per process).
pub fn schema() -> &'static Schema {
    &parsed().schema
}

pub(crate) fn validator() -> &'static Validator {
    &parsed().validator
}

/// `Action::"call"`, the one action of the schema.
pub fn call_action() -> &'static EntityUid {
    &parsed().call
}

pub(crate) fn uid(kind: Kind, id: &str) -> EntityUid {
    let p = parsed();
    let name = match kind {
        Kind::Application => &p.application,
        Kind::Subscription => &p.subscription,
        Kind::Org => &p.org,
        Kind::Plan => &p.plan,
        Kind::Api => &p.api,
    };
    EntityUid::from_type_name_and_id(name.clone(), cedar_policy::EntityId::new(id))
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Application,
    Subscription,
    Org,
    Plan,
    Api,
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_parses() {
        let _ = super::schema();
        assert_eq!(super::call_action().to_string(), r#"Action::"call""#);
    }
}
