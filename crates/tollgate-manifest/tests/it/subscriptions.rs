//! Subscriptions in manifests: exported with their signed acceptance records, imported
//! as they are, verified before anything is sent.

use crate::{fixture, sim};
use base64::Engine as _;
use time::OffsetDateTime;
use tollgate_core::model::{
    ACCEPTANCE_V1, Acceptance, AcceptanceRecord, Subscription, SubscriptionState,
};
use tollgate_core::{AcceptanceId, SubscriptionId, UserId};
use tollgate_keyring::{KeyPurpose, Keyring, MasterKey};
use tollgate_manifest::{
    Catalog, Format, ManifestError, Step, VerificationKey, export, export_toml, parse_str, plan,
};

const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

/// A marketplace's acceptance-signing key.
struct Signer {
    ring: Keyring,
    key: VerificationKey,
}

fn signer() -> Signer {
    let master = MasterKey::from_encoded(&MasterKey::generate().unwrap().encode()).unwrap();
    let mut ring = Keyring::open(Vec::new(), &master).unwrap();
    ring.ensure(KeyPurpose::AcceptanceSigning, T0).unwrap();
    let rec = ring.active(KeyPurpose::AcceptanceSigning).unwrap();
    let key = VerificationKey {
        key_id: rec.id.to_string(),
        public_key: base64::engine::general_purpose::STANDARD
            .encode(rec.public_key.as_ref().unwrap()),
    };
    Signer { ring, key }
}

/// The `terms` fixture with a consumer org and its app.
fn source_manifest() -> String {
    std::fs::read_to_string(fixture("terms/catalog.yaml"))
        .unwrap()
        .replacen(
            "orgs:\n",
            "orgs:\n  - slug: globex\n    name: Globex\n    kind: consumer\n",
            1,
        )
        + "apps:\n  - org: globex\n    slug: dashboard\n    name: Globex Dashboard\n"
}

fn load_text(text: &str) -> Result<tollgate_manifest::Manifest, Vec<ManifestError>> {
    // Named as the fixture, so its relative sheet and OpenAPI paths resolve.
    parse_str(&fixture("terms/catalog.yaml"), Format::Yaml, text)
}

/// The source marketplace, with the signer's key known.
fn source(s: &Signer) -> Catalog {
    let m = load_text(&source_manifest()).unwrap();
    let mut cat = Catalog::default();
    let steps = plan(&m, &cat).unwrap();
    sim::apply(&mut cat, &steps);
    cat.verification_keys.push(s.key.clone());
    cat
}

/// Subscribes `globex/dashboard` to `acme-weather/<plan>` the way the server does:
/// accepting the plan's current sheet, signed.
fn subscribe(cat: &mut Catalog, s: &Signer, plan: &str, state: SubscriptionState) {
    let app = cat.apps.iter().find(|a| a.slug == "dashboard").unwrap();
    let p = cat.plans.iter().find(|p| p.slug == plan).unwrap();
    let sheet = cat.terms.iter().find(|t| Some(t.id) == p.terms_id).unwrap();
    let sub = Subscription {
        id: SubscriptionId::new(),
        app_id: app.id,
        consumer_org_id: app.org_id,
        plan_id: p.id,
        provider_org_id: p.org_id,
        state,
        mode: Default::default(),
        terms_sha256: Some(sheet.sha256.clone()),
        history: Vec::new(),
        created_at: T0,
        updated_at: T0,
        revision: 1,
    };
    let record = AcceptanceRecord {
        type_: ACCEPTANCE_V1.into(),
        id: AcceptanceId::new(),
        subscription_id: sub.id,
        app_id: sub.app_id,
        plan_id: sub.plan_id,
        consumer_org_id: sub.consumer_org_id,
        provider_org_id: sub.provider_org_id,
        terms_id: sheet.id,
        terms_sha256: sheet.sha256.clone(),
        sheet_id: sheet.sheet_id.clone(),
        sheet_version: sheet.version.clone(),
        accepted_by: UserId::new(),
        accepted_at: "2026-01-02T03:04:05Z".into(),
        ip: Some("203.0.113.7".into()),
        user_agent: None,
    };
    let sig = s
        .ring
        .sign(KeyPurpose::AcceptanceSigning, &record.signing_bytes())
        .unwrap();
    let a = Acceptance {
        record,
        key_id: sig.key_id.to_string(),
        signature: base64::engine::general_purpose::STANDARD.encode(sig.bytes),
    };
    cat.subscriptions.push((sub, vec![a]));
}

fn imports(steps: &[Step]) -> Vec<&Step> {
    steps
        .iter()
        .filter(|s| matches!(s, Step::ImportSubscription { .. }))
        .collect()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn one_error(r: Result<impl std::fmt::Debug, Vec<ManifestError>>) -> ManifestError {
    let errors = r.unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn export_apply_export_keeps_the_signed_records() {
    let s = signer();
    let mut src = source(&s);
    subscribe(&mut src, &s, "free", SubscriptionState::Active);
    let (_, original) = src.subscriptions[0].clone();
    let yaml = export(&src);
    assert!(yaml.contains("\nsubscriptions:\n- app:\n    org: globex\n    slug: dashboard\n  plan:\n    org: acme-weather\n    slug: free\n  state: active\n  acceptances:\n  - record:\n      type: tollgate.acceptance.v1\n"), "{yaml}");
    assert!(
        yaml.contains(&format!(
            "\nverification_keys:\n- key_id: {}\n  public_key: {}\n",
            s.key.key_id, s.key.public_key
        )),
        "{yaml}"
    );
    let m = load_text(&yaml).unwrap_or_else(|e| panic!("{e:#?}\n{yaml}"));
    assert!(
        plan(&m, &src).unwrap().is_empty(),
        "applying to the source changes nothing"
    );

    // To an empty marketplace: imported last, verbatim, with the key it needs.
    let steps = plan(&m, &Catalog::default()).unwrap();
    let Some(Step::ImportSubscription {
        app,
        plan: p,
        state,
        acceptances,
        verification_keys,
        ..
    }) = steps.last()
    else {
        panic!("{steps:#?}")
    };
    assert_eq!(
        steps.last().unwrap().to_string(),
        "import subscription of app globex/dashboard to plan acme-weather/free (active, 1 signed acceptance)"
    );
    assert_eq!(
        (app.to_string(), p.to_string()),
        ("globex/dashboard".into(), "acme-weather/free".into())
    );
    assert_eq!(*state, SubscriptionState::Active);
    assert_eq!(acceptances, &original);
    assert_eq!(verification_keys, &vec![s.key.clone()]);
    let mut fresh = Catalog::default();
    sim::apply(&mut fresh, &steps);
    assert_eq!(fresh.subscriptions.len(), 1);
    assert_eq!(
        fresh.subscriptions[0].1, original,
        "same record ids and signatures"
    );
    assert_eq!(
        fresh.subscriptions[0].0.terms_sha256.as_deref(),
        Some(original[0].record.terms_sha256.as_str())
    );
    assert!(plan(&m, &fresh).unwrap().is_empty());
    assert_eq!(export(&fresh), yaml, "export → apply → export is lossless");

    // TOML says the same (the record's `user_agent: null` is left out, and reads back).
    let toml = export_toml(&src).unwrap();
    let t = parse_str(&fixture("terms/catalog.toml"), Format::Toml, &toml)
        .unwrap_or_else(|e| panic!("{e:#?}\n{toml}"));
    assert_eq!(t, m);
}

#[test]
fn a_changed_record_or_signature_is_refused_where_it_is() {
    let s = signer();
    let mut src = source(&s);
    subscribe(&mut src, &s, "free", SubscriptionState::Active);
    let yaml = export(&src);
    let sig = &src.subscriptions[0].1[0].signature;

    // Another user's name on the record: the signature no longer covers it.
    let accepted_by = src.subscriptions[0].1[0].record.accepted_by.to_string();
    let forged = yaml.replace(&accepted_by, &UserId::new().to_string());
    let e = one_error(load_text(&forged));
    assert_eq!(e.field, "subscriptions[0].acceptances[0].signature");
    assert_eq!(e.line, Some(line_of(&forged, "signature:")));
    assert!(e.message.contains("does not verify"), "{e}");

    // A signature from another record.
    let mut other = src.clone();
    other.subscriptions.clear();
    subscribe(&mut other, &s, "free", SubscriptionState::Active);
    let swapped = yaml.replace(sig, &other.subscriptions[0].1[0].signature);
    let e = one_error(load_text(&swapped));
    assert_eq!(e.field, "subscriptions[0].acceptances[0].signature");

    // In TOML too, with the line of the signature.
    let toml = export_toml(&src)
        .unwrap()
        .replace(sig, &other.subscriptions[0].1[0].signature);
    let e = one_error(parse_str(
        &fixture("terms/catalog.toml"),
        Format::Toml,
        &toml,
    ));
    assert_eq!(e.field, "subscriptions[0].acceptances[0].signature");
    assert_eq!(e.line, Some(line_of(&toml, "signature = ")));

    // Not base64 at all.
    let e = one_error(load_text(&yaml.replace(sig, "not base64!")));
    assert_eq!(e.field, "subscriptions[0].acceptances[0].signature");
    assert!(e.message.contains("base64"), "{e}");

    // A record that is not an acceptance record: the parser says where.
    let e = one_error(load_text(&yaml.replace("      ip: ", "      ipv6: ")));
    assert!(
        e.field
            .starts_with("subscriptions[0].acceptances[0].record"),
        "{e}"
    );
}

#[test]
fn signatures_are_checked_with_the_marketplace_key_when_the_manifest_has_none() {
    let s = signer();
    let mut src = source(&s);
    subscribe(&mut src, &s, "free", SubscriptionState::Active);
    let yaml = export(&src);
    let without_keys = yaml[..yaml.find("verification_keys:").unwrap()].to_owned();
    let m = load_text(&without_keys).unwrap();
    // The target knows the key: fine (and the step sends it along).
    let mut target = Catalog {
        verification_keys: vec![s.key.clone()],
        ..Catalog::default()
    };
    let steps = plan(&m, &target).unwrap();
    sim::apply(&mut target, &steps);
    assert_eq!(target.subscriptions[0].1, src.subscriptions[0].1);
    // It does not: the key id is named.
    let e = one_error(plan(&m, &Catalog::default()));
    assert_eq!(e.field, "subscriptions[0].acceptances[0].key_id");
    assert!(e.message.contains("verification_keys"), "{e}");
    // A record changed, checked with the marketplace's key.
    let accepted_at = "2026-01-02T03:04:05Z";
    let m = load_text(&without_keys.replace(accepted_at, "2026-01-02T03:04:06Z")).unwrap();
    let e = one_error(plan(
        &m,
        &Catalog {
            verification_keys: vec![s.key.clone()],
            ..Catalog::default()
        },
    ));
    assert_eq!(e.field, "subscriptions[0].acceptances[0].signature");
    assert!(e.line.is_some());
    // A manifest key that contradicts the marketplace's.
    let other = signer();
    let m = load_text(&yaml).unwrap();
    let mut clash = Catalog::default();
    clash.verification_keys.push(VerificationKey {
        key_id: s.key.key_id.clone(),
        public_key: other.key.public_key,
    });
    let e = one_error(plan(&m, &clash));
    assert_eq!(e.field, "verification_keys[0].public_key");
}

#[test]
fn existing_subscriptions_are_left_alone_state_included() {
    let s = signer();
    let mut src = source(&s);
    subscribe(&mut src, &s, "free", SubscriptionState::Active);
    let yaml = export(&src);
    // The manifest says suspended; the marketplace's active subscription stays as it is.
    let m = load_text(&yaml.replace("state: active", "state: suspended")).unwrap();
    assert!(plan(&m, &src).unwrap().is_empty());
    // A cancelled one is not open: the manifest's is imported.
    let mut cancelled = src.clone();
    cancelled.subscriptions[0].0.state = SubscriptionState::Cancelled;
    let steps = plan(&m, &cancelled).unwrap();
    assert_eq!(imports(&steps).len(), 1, "{steps:#?}");
    sim::apply(&mut cancelled, &steps);
    assert_eq!(
        cancelled.subscriptions[1].0.state,
        SubscriptionState::Suspended
    );
    // …and cancelled subscriptions are not exported.
    let exported = export(&cancelled);
    assert_eq!(exported.matches("- app:").count(), 1, "{exported}");
    assert!(exported.contains("state: suspended"), "{exported}");
}

#[test]
fn only_subscriptions_between_exported_orgs_are_exported() {
    let s = signer();
    let mut src = source(&s);
    subscribe(&mut src, &s, "pro", SubscriptionState::Pending);
    // The provider's org is not the caller's: its plans are not in the catalog.
    let mut consumer_only = src.clone();
    consumer_only.plans.clear();
    let yaml = export(&consumer_only);
    assert!(!yaml.contains("subscriptions:"), "{yaml}");
    assert!(!yaml.contains("verification_keys:"), "{yaml}");
    // With both, it is there, pending.
    let yaml = export(&src);
    assert!(yaml.contains("slug: pro\n  state: pending\n"), "{yaml}");
}

#[test]
fn manifest_problems_are_named() {
    let s = signer();
    let mut src = source(&s);
    subscribe(&mut src, &s, "free", SubscriptionState::Active);
    let yaml = export(&src);
    let subs = &yaml[yaml.find("subscriptions:").unwrap()..];

    // Cancelled is not a state a manifest can carry.
    let e = one_error(load_text(
        &yaml.replace("state: active", "state: cancelled"),
    ));
    assert_eq!(e.field, "subscriptions[0].state");
    // The same (app, plan) twice.
    let entry = &subs["subscriptions:\n".len()..subs.find("verification_keys:").unwrap()];
    let twice = yaml.replace(entry, &format!("{entry}{entry}"));
    let e = one_error(load_text(&twice));
    assert_eq!(e.field, "subscriptions[1].plan");
    // A malformed key.
    let e = one_error(load_text(&yaml.replace(&s.key.public_key, "AAAA")));
    assert_eq!(e.field, "verification_keys[0].public_key");

    // A plan with terms needs the acceptances.
    let start = yaml.find("  acceptances:\n").unwrap();
    let end = yaml.find("verification_keys:").unwrap();
    let bare = format!("{}{}", &yaml[..start], &yaml[end..]);
    let e = one_error(plan(&load_text(&bare).unwrap(), &Catalog::default()));
    assert_eq!(e.field, "subscriptions[0]");
    assert!(e.message.contains("acceptance"), "{e}");

    // Unknown app or plan.
    let nope = yaml.replace("    slug: dashboard\n  plan:", "    slug: nope\n  plan:");
    let e = one_error(plan(&load_text(&nope).unwrap(), &Catalog::default()));
    assert_eq!(e.field, "subscriptions[0].app.slug");
    assert_eq!(e.line, Some(line_of(&nope, "slug: nope")));

    // The accepted sheet must be a sheet of the plan's org: drop the free sheet from a
    // target that has everything else.
    let m = load_text(&yaml).unwrap();
    let mut target = src.clone();
    target.subscriptions.clear();
    let free = m
        .terms
        .iter()
        .position(|t| t.document.as_ref().unwrap()["id"] == "weather-free")
        .unwrap();
    let mut m2 = m.clone();
    m2.terms.remove(free);
    m2.plans.retain(|p| p.slug != "free");
    let free_sha = src.subscriptions[0].1[0].record.terms_sha256.clone();
    target.terms.retain(|t| t.sha256 != free_sha);
    let e = one_error(plan(&m2, &target));
    assert_eq!(
        e.field,
        "subscriptions[0].acceptances[0].record.terms_sha256"
    );
}
