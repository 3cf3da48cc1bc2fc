//! The canonical hash: invariant under format, key order, white space and the order of
//! set-like lists; changed by any semantic change.

use crate::common::*;
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;
use tollgate_terms::model::*;
use tollgate_terms::{Format, parse_str};

/// A small deterministic shuffler (proptest gives the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Reorders every object's keys.
fn shuffle_keys(v: Value, rng: &mut Rng) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            rng.shuffle(&mut entries);
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, shuffle_keys(v, rng)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| shuffle_keys(x, rng)).collect()),
        x => x,
    }
}

/// Reorders the lists whose order carries no meaning.
fn shuffle_sets(s: &mut TermSheet, rng: &mut Rng) {
    for g in &mut s.grants {
        rng.shuffle(&mut g.operations);
        rng.shuffle(&mut g.scopes);
        rng.shuffle(&mut g.data.categories);
    }
    rng.shuffle(&mut s.grants);
    rng.shuffle(&mut s.data.purposes);
    if let Some(r) = &mut s.data.regions {
        rng.shuffle(r);
    }
    rng.shuffle(&mut s.limits.rate);
    rng.shuffle(&mut s.limits.quota);
    if let Some(w) = &mut s.windows {
        for win in &mut w.allowed {
            rng.shuffle(&mut win.days);
        }
        rng.shuffle(&mut w.allowed);
        rng.shuffle(&mut w.blackout);
    }
    if let Some(sla) = &mut s.sla {
        rng.shuffle(&mut sla.credits);
    }
}

/// Writes `v` in `format`, or `None` when the format cannot hold it (TOML has no null).
fn write(v: &Value, format: Format, pretty: bool) -> Option<String> {
    match format {
        Format::Json if pretty => serde_json::to_string_pretty(v).ok(),
        Format::Json => serde_json::to_string(v).ok(),
        Format::Yaml => yaml_serde::to_string(v).ok(),
        Format::Toml => toml::to_string(v).ok(),
    }
}

fn hash_of(text: &str, format: Format) -> String {
    let l =
        parse_str(Path::new("x"), Some(format), text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    l.validate()
        .unwrap_or_else(|e| panic!("{e:?}"))
        .sha256()
        .to_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn same_terms_in_any_format_and_order_hash_alike(
        fixture in 0usize..3,
        seed in any::<u64>(),
        format in prop_oneof![Just(Format::Json), Just(Format::Yaml), Just(Format::Toml)],
        pretty in any::<bool>(),
    ) {
        let name = FIXTURES[fixture];
        let expected = valid(name).sha256().to_owned();
        let mut rng = Rng(seed);
        let mut s = sheet(name);
        shuffle_sets(&mut s, &mut rng);
        let v = shuffle_keys(serde_json::to_value(&s).unwrap(), &mut rng);
        let (text, format) = match write(&v, format, pretty) {
            Some(t) => (t, format),
            None => (write(&v, Format::Json, pretty).unwrap(), Format::Json),
        };
        prop_assert_eq!(hash_of(&text, format), expected);
    }

    #[test]
    fn any_quota_or_rate_change_changes_the_hash(
        fixture in 0usize..3,
        delta in 1u64..1_000_000,
        which in 0usize..4,
    ) {
        let name = FIXTURES[fixture];
        let base = valid(name);
        let mut s = sheet(name);
        let l = &mut s.limits;
        match which {
            0 => l.rate[0].requests += delta,
            1 => l.quota[0].requests += delta,
            2 => l.rate[0].burst = Some(l.rate[0].burst.unwrap_or(l.rate[0].requests) + delta),
            _ => s.notice.days += u32::try_from(delta).unwrap(),
        }
        let changed = revalidate(&s);
        prop_assert_ne!(changed.sha256(), base.sha256());
    }
}

type Edit = (&'static str, fn(&mut TermSheet));

/// One edit per kind of clause; each must change the hash.
const EDITS: &[Edit] = &[
    ("version", |s| s.version = "1.2.1".into()),
    ("title", |s| s.title.push('!')),
    ("effective", |s| s.effective = "2026-01-02".parse().unwrap()),
    ("jurisdiction", |s| s.jurisdiction = "BE".into()),
    ("governing_law", |s| s.governing_law.push('.')),
    ("language", |s| s.language = "fr".into()),
    ("section body", |s| s.sections[0].body.push_str(" Really.")),
    ("section order", |s| s.sections.reverse()),
    ("scope added", |s| s.grants[0].scopes.push("extra".into())),
    ("operation added", |s| {
        s.grants[0]
            .operations
            .push(OperationRef::Id("getRadar".into()))
    }),
    ("group renamed", |s| {
        s.grants[0].group = Some("basic".into());
        s.limits.rate[0].group = Some("basic".into());
        s.limits.quota[0].group = Some("basic".into());
    }),
    ("category", |s| {
        s.grants[1].data.categories.push(Category("contact".into()))
    }),
    ("sensitivity", |s| {
        s.grants[1].data.sensitivity = Some(Sensitivity::Sensitive)
    }),
    ("consent", |s| {
        s.grants[0].data.consent_required = Some(true)
    }),
    ("purpose", |s| {
        s.data.purposes.push(Purpose("research".into()))
    }),
    ("retention", |s| s.data.retention_days = Some(31)),
    ("regions", |s| s.data.regions = Some(vec!["eu".into()])),
    ("limits zone", |s| s.limits.time_zone = Some("UTC".into())),
    ("rate period", |s| s.limits.rate[1].per = RatePeriod::Hour),
    ("quota period", |s| s.limits.quota[0].per = QuotaPeriod::Day),
    ("window zone", |s| {
        s.windows.as_mut().unwrap().time_zone = "Europe/Berlin".into()
    }),
    ("window hours", |s| {
        s.windows.as_mut().unwrap().allowed[0].to = "18:01".parse().unwrap()
    }),
    ("window days", |s| {
        s.windows.as_mut().unwrap().allowed[0]
            .days
            .push(Weekday::Sat)
    }),
    ("blackout", |s| {
        s.windows.as_mut().unwrap().blackout[0].to = Some("2026-12-26".parse().unwrap())
    }),
    ("blackout reason", |s| {
        s.windows.as_mut().unwrap().blackout[0].reason = None
    }),
    ("availability", |s| {
        s.sla.as_mut().unwrap().availability = "99.95".parse().unwrap()
    }),
    ("latency", |s| {
        s.sla.as_mut().unwrap().latency.as_mut().unwrap().ms = 301
    }),
    ("sla window", |s| {
        s.sla.as_mut().unwrap().window = Some(SlaWindow::Day)
    }),
    ("credit", |s| {
        s.sla.as_mut().unwrap().credits[1].credit = "26".parse().unwrap()
    }),
    ("price ref", |s| {
        s.pricing = Some(Pricing::Ref(PriceRef {
            id: "weather-standard-2027".into(),
            sha256: "0".repeat(64),
        }))
    }),
    ("inline price", |s| {
        s.pricing = Some(Pricing::Inline(serde_json::json!({
            "id": "weather-standard", "version": "2026", "currency": "EUR",
            "base_fee": { "amount": "9.90" },
            // The sheet's quota per billing period counts these very periods.
            "billing_cycle": { "anchor": "subscription", "time_zone": "Europe/Paris" }
        })))
    }),
    ("notice", |s| s.notice.on_expiry = OnExpiry::Suspend),
];

#[test]
fn every_semantic_change_changes_the_hash() {
    let base = valid("weather-standard.yaml");
    let mut seen = std::collections::BTreeMap::new();
    seen.insert(base.sha256().to_owned(), "base");
    for (what, edit) in EDITS {
        let mut s = sheet("weather-standard.yaml");
        edit(&mut s);
        let v = revalidate(&s);
        if let Some(prev) = seen.insert(v.sha256().to_owned(), what) {
            panic!("{what} gives the same hash as {prev}");
        }
    }
}

#[test]
fn defaults_written_or_omitted_hash_alike() {
    let base = valid("weather-standard.yaml");
    let mut s = sheet("weather-standard.yaml");
    s.limits.rate[1].burst = Some(s.limits.rate[1].requests);
    let w = s.windows.as_mut().unwrap();
    w.blackout[0].to = Some(w.blackout[0].from);
    let sla = s.sla.as_mut().unwrap();
    sla.window = Some(SlaWindow::CalendarMonth);
    sla.availability = "99.900".parse().unwrap();
    s.grants[1].data.sensitivity = Some(Sensitivity::Personal);
    s.grants[1].data.consent_required = Some(false);
    s.sections[0].body = s.sections[0].body.replace('\n', "\r\n") + "\n\n";
    s.schema = Some("https://example.org/schema.json".into());
    assert_eq!(revalidate(&s).sha256(), base.sha256());
}

#[test]
fn the_canonical_form_is_versioned_and_stable() {
    let v = valid("weather-standard.yaml");
    let c = v.canonical_json();
    assert_eq!(c["tollgate_terms"], 1);
    assert_eq!(c["sheet"]["sla"]["availability"], "99.9");
    assert_eq!(c["sheet"]["limits"]["rate"][0]["burst"], 60);
    assert!(c["sheet"].get("$schema").is_none());
    // Pinned: a change here is a change of encoding and needs a new version.
    assert_eq!(
        v.sha256(),
        tollgate_core::hash::canonical_sha256(c).unwrap().as_str()
    );
}

#[test]
fn every_fixture_round_trips_through_each_format() {
    for name in FIXTURES {
        let expected = valid(name).sha256().to_owned();
        let v = serde_json::to_value(sheet(name)).unwrap();
        for format in [Format::Json, Format::Yaml, Format::Toml] {
            // TOML has no null: the fintech prices' open-ended tier cannot be written.
            let Some(text) = write(&v, format, true) else {
                assert_eq!((name, format), ("fintech-payments.json", Format::Toml));
                continue;
            };
            assert_eq!(hash_of(&text, format), expected, "{name} as {format:?}");
        }
    }
}
