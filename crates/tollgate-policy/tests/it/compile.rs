//! Compiled Cedar text (snapshots), clause-naming errors and operator policies.

use tollgate_policy::{Hours, OperatorPolicies, PlanTerms, PolicyError, compile, schema};

use crate::fixtures::{batch_terms, health_terms, operator, weather_terms};

#[test]
fn weather_plan_snapshot() {
    insta::assert_snapshot!(compile(&weather_terms(), &operator()).unwrap().cedar_text());
}

#[test]
fn health_plan_snapshot() {
    insta::assert_snapshot!(compile(&health_terms(), &operator()).unwrap().cedar_text());
}

#[test]
fn overnight_plan_snapshot() {
    insta::assert_snapshot!(
        compile(&batch_terms(), &OperatorPolicies::none())
            .unwrap()
            .cedar_text()
    );
}

#[test]
fn slices_stay_small() {
    // The cost of Cedar grows with the number of policies: a plan compiles into a
    // handful, whatever the number of operations.
    let mut terms = health_terms();
    for i in 0..50 {
        terms.grants[0].operations.push(format!("op{i}"));
    }
    let plan = compile(&terms, &operator()).unwrap();
    let ids: Vec<&str> = plan.clauses().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        [
            "health-records@b7d2e415/grant",
            "health-records@b7d2e415/subscription",
            "health-records@b7d2e415/scope",
            "health-records@b7d2e415/region",
            "health-records@b7d2e415/purpose",
            "health-records@b7d2e415/consent/contact+health",
            "health-records@b7d2e415/consent/location",
        ]
    );
    assert_eq!(plan.policy_set().policies().count(), ids.len() + 1);
    // The verdict set: grant, merged deny, operator.
    let mut fast: Vec<String> = plan
        .verdict_set()
        .policies()
        .map(|p| p.id().to_string())
        .collect();
    fast.sort();
    assert_eq!(
        fast,
        [
            "health-records@b7d2e415/deny",
            "health-records@b7d2e415/grant",
            "operator/embargo"
        ]
    );
}

#[test]
fn a_large_grant_compiles() {
    // The evaluated sets are rebuilt without source locations through Cedar's JSON form,
    // which recurses once per `||` of a grant: three hundred operations must still compile
    // (and decide) on an ordinary thread.
    let mut terms = health_terms();
    for i in 0..300 {
        terms.grants[0].operations.push(format!("op{i}"));
    }
    let plan = compile(&terms, &operator()).unwrap();
    assert_eq!(plan.policy_set().policies().count(), 8);
}

#[test]
fn compiled_text_reparses_with_the_same_ids() {
    for terms in [weather_terms(), health_terms(), batch_terms()] {
        let plan = compile(&terms, &OperatorPolicies::none()).unwrap();
        let reparsed: cedar_policy::PolicySet = plan.cedar_text().parse().unwrap();
        let mut ids: Vec<String> = reparsed
            .policies()
            .map(|p| p.annotation("id").unwrap().to_owned())
            .collect();
        let mut want: Vec<String> = plan.clauses().map(|(id, _)| id.to_owned()).collect();
        ids.sort();
        want.sort();
        assert_eq!(ids, want);
        let result = cedar_policy::Validator::new(schema().clone())
            .validate(&reparsed, cedar_policy::ValidationMode::Strict);
        assert!(result.validation_passed());
    }
}

fn clause_of(terms: &PlanTerms) -> String {
    match compile(terms, &OperatorPolicies::none()) {
        Err(PolicyError::Clause { clause, .. }) => clause,
        other => panic!("expected a clause error, got {other:?}"),
    }
}

#[test]
fn errors_name_the_clause() {
    let mut t = weather_terms();
    t.grants.push(t.grants[0].clone());
    t.grants[2].operations.clear();
    assert_eq!(clause_of(&t), "grants[2].operations");

    let mut t = weather_terms();
    t.grants[1].operations[0] = String::new();
    assert_eq!(clause_of(&t), "grants[1].operations[0]");

    let mut t = weather_terms();
    t.window.as_mut().unwrap().allow[0].days.clear();
    assert_eq!(clause_of(&t), "window.allow[0]");

    let mut t = weather_terms();
    t.window.as_mut().unwrap().allow.push(Hours {
        days: vec![jiff::civil::Weekday::Monday],
        from_minute: 600,
        to_minute: 1441,
    });
    assert_eq!(clause_of(&t), "window.allow[1]");

    let mut t = weather_terms();
    t.window.as_mut().unwrap().allow[0].to_minute = t.window.as_ref().unwrap().allow[0].from_minute;
    assert_eq!(clause_of(&t), "window.allow[0]");

    let mut t = weather_terms();
    t.window.as_mut().unwrap().tz = "Europe/Atlantis".into();
    assert_eq!(clause_of(&t), "window.tz");

    let mut t = weather_terms();
    t.regions = Some(vec![]);
    assert_eq!(clause_of(&t), "regions");

    let mut t = health_terms();
    t.purposes = Some(vec![]);
    assert_eq!(clause_of(&t), "purposes");

    let mut t = health_terms();
    t.sensitive[2].categories.clear();
    assert_eq!(clause_of(&t), "sensitive[2].categories");

    let mut t = weather_terms();
    t.grants.clear();
    assert_eq!(clause_of(&t), "grants");

    let mut t = weather_terms();
    t.key = String::new();
    assert_eq!(clause_of(&t), "key");
}

#[test]
fn odd_identifiers_are_quoted_not_injected() {
    let mut t = weather_terms();
    t.key = "plan\"); permit(principal, action, resource); //@x".into();
    t.grants[0].api = "we\\ath\"er".into();
    t.grants[0].operations.push("op with \"quotes\"\n".into());
    let plan = compile(&t, &OperatorPolicies::none()).unwrap();
    // Still the same number of policies: nothing leaked out of a string literal.
    assert_eq!(plan.policy_set().policies().count(), plan.clauses().count());
}

#[test]
fn operator_policies() {
    let ops = operator();
    assert_eq!(ops.ids().collect::<Vec<_>>(), ["operator/embargo"]);

    let unnamed = OperatorPolicies::parse(
        "forbid (principal, action, resource) when { context.auth_method == \"none\" };\n\
         forbid (principal, action, resource == Api::\"legacy\");",
    )
    .unwrap();
    assert_eq!(
        unnamed.ids().collect::<Vec<_>>(),
        ["operator/0", "operator/1"]
    );

    // Not valid against the schema: unknown attribute.
    let bad = OperatorPolicies::parse(
        "forbid (principal, action, resource) when { context.country == \"x\" };",
    );
    assert!(matches!(bad, Err(PolicyError::Operator { .. })), "{bad:?}");
    // Syntax error.
    assert!(matches!(
        OperatorPolicies::parse("forbid (principal"),
        Err(PolicyError::Operator { .. })
    ));
    // Templates are not policies.
    assert!(
        OperatorPolicies::parse("permit (principal == ?principal, action, resource);").is_err()
    );
    // A clash with a plan's own ids.
    let clash = OperatorPolicies::parse(&format!(
        "@id(\"{}/grant\") forbid (principal, action, resource);",
        crate::fixtures::WEATHER
    ))
    .unwrap();
    assert!(matches!(
        compile(&weather_terms(), &clash),
        Err(PolicyError::DuplicateId { .. })
    ));
}
