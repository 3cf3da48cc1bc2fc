//! What changed between two versions of a sheet, clause by clause, and what each change
//! means for a subscriber — what they must know before accepting.
//!
//! Classification, always from the subscriber's side:
//!
//! - **MorePermissive** — they may do more, or are promised more: an operation, scope
//!   requirement removed, data category or purpose added, longer retention, more regions
//!   or hours, a higher rate limit, burst or quota, a removed limit or blackout, a
//!   stronger SLA (higher availability, faster latency, bigger credits, an SLA added),
//!   a longer notice, `suspend` → `move`, a lower sensitivity or dropped consent need.
//! - **MoreRestrictive** — the mirror image: an operation removed, a scope now required,
//!   a category or purpose removed, shorter retention, fewer regions or hours, lower
//!   limits, a new limit or blackout, a weaker or removed SLA, a shorter notice,
//!   `move` → `suspend`, a higher sensitivity, consent now required.
//! - **Mixed** — one clause moved both ways (hours added on Monday and removed on
//!   Friday, a different set of regions, a time zone change of the windows).
//! - **PriceUp / PriceDown** — an inline price leaf changed where the two versions are
//!   comparable: same path, both numbers (or decimal strings), and a key that names a
//!   price (`price`, `amount`, `fee`, `cost`, `minimum`, `commitment`, `rate`) —
//!   up is PriceUp — or an allowance (`free`, `included`, `allowance`, `discount`) — up
//!   is PriceDown.
//! - **PriceChanged** — any other pricing change: a leaf added or removed, a value of
//!   another kind, a key not recognised above, a reference to another price version.
//! - **TextOnly** — the human text: a section added, removed, changed or moved; the
//!   title; the language.
//! - **Neutral** — identity and bookkeeping: id, version, effective date, jurisdiction,
//!   governing law, limit groups of an operation, the quota time zone, the SLA window,
//!   windows whose coverage is the same.

use crate::model::*;
use crate::validate::{OperationFacts, ValidatedSheet};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How a change affects the subscriber (see the module documentation for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    MorePermissive,
    MoreRestrictive,
    Mixed,
    PriceUp,
    PriceDown,
    PriceChanged,
    TextOnly,
    Neutral,
}

/// One changed clause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Which clause, e.g. `operations.weather:getWeather.scopes`, `limits.rate.standard.second`.
    pub path: String,
    /// The old value; `None` when the clause is new.
    pub old: Option<Value>,
    /// The new value; `None` when the clause was removed.
    pub new: Option<Value>,
    pub kind: ChangeKind,
    /// The change in plain words.
    pub summary: String,
}

/// Every clause that differs between `old` and `new`, in sheet order.
pub fn diff(old: &ValidatedSheet, new: &ValidatedSheet) -> Vec<Change> {
    let mut d = Differ(Vec::new());
    let (o, n) = (old.sheet(), new.sheet());
    identity(&mut d, o, n);
    sections(&mut d, o, n);
    operations(&mut d, old.operations(), new.operations());
    data(&mut d, &o.data, &n.data);
    limits(&mut d, &o.limits, &n.limits);
    windows(&mut d, o.windows.as_ref(), n.windows.as_ref());
    sla(&mut d, o.sla.as_ref(), n.sla.as_ref());
    pricing(&mut d, o.pricing.as_ref(), n.pricing.as_ref());
    notice(&mut d, &o.notice, &n.notice);
    d.0
}

struct Differ(Vec<Change>);

fn val<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Differ {
    fn push<T: Serialize>(
        &mut self,
        path: impl Into<String>,
        old: Option<&T>,
        new: Option<&T>,
        kind: ChangeKind,
        summary: impl Into<String>,
    ) {
        self.0.push(Change {
            path: path.into(),
            old: old.map(val),
            new: new.map(val),
            kind,
            summary: summary.into(),
        });
    }

    fn field<T: Serialize + PartialEq + std::fmt::Debug>(
        &mut self,
        path: &str,
        old: &T,
        new: &T,
        kind: ChangeKind,
    ) {
        if old != new {
            let summary = format!("{path} changed from {} to {}", val(old), val(new));
            self.push(path, Some(old), Some(new), kind, summary);
        }
    }
}

/// Classifies a change of a set where more is better for the subscriber.
fn set_kind<T: Ord>(old: &BTreeSet<T>, new: &BTreeSet<T>) -> Option<ChangeKind> {
    match (new.is_superset(old), new.is_subset(old)) {
        (true, true) => None,
        (true, false) => Some(ChangeKind::MorePermissive),
        (false, true) => Some(ChangeKind::MoreRestrictive),
        (false, false) => Some(ChangeKind::Mixed),
    }
}

/// Classifies a number where more is better for the subscriber.
fn more_is_better<T: PartialOrd>(old: T, new: T) -> Option<ChangeKind> {
    if new > old {
        Some(ChangeKind::MorePermissive)
    } else if new < old {
        Some(ChangeKind::MoreRestrictive)
    } else {
        None
    }
}

fn identity(d: &mut Differ, o: &TermSheet, n: &TermSheet) {
    use ChangeKind::*;
    d.field("id", &o.id, &n.id, Neutral);
    d.field("version", &o.version, &n.version, Neutral);
    d.field("title", &o.title, &n.title, TextOnly);
    d.field("effective", &o.effective, &n.effective, Neutral);
    d.field("jurisdiction", &o.jurisdiction, &n.jurisdiction, Neutral);
    d.field("governing_law", &o.governing_law, &n.governing_law, Neutral);
    d.field("language", &o.language, &n.language, TextOnly);
}

fn sections(d: &mut Differ, o: &TermSheet, n: &TermSheet) {
    let old: BTreeMap<&str, &Section> = o.sections.iter().map(|s| (s.id.as_str(), s)).collect();
    let new: BTreeMap<&str, &Section> = n.sections.iter().map(|s| (s.id.as_str(), s)).collect();
    for s in &o.sections {
        let path = format!("sections.{}", s.id);
        match new.get(s.id.as_str()) {
            None => d.push(
                path,
                Some(s),
                None,
                ChangeKind::TextOnly,
                format!("section \"{}\" removed", s.title),
            ),
            Some(ns) if ns != &s => d.push(
                path,
                Some(s),
                Some(*ns),
                ChangeKind::TextOnly,
                format!("section \"{}\" changed", ns.title),
            ),
            Some(_) => {}
        }
    }
    for s in &n.sections {
        if !old.contains_key(s.id.as_str()) {
            d.push(
                format!("sections.{}", s.id),
                None,
                Some(s),
                ChangeKind::TextOnly,
                format!("section \"{}\" added", s.title),
            );
        }
    }
    let order = |v: &[Section], other: &BTreeMap<&str, &Section>| -> Vec<String> {
        v.iter()
            .filter(|s| other.contains_key(s.id.as_str()))
            .map(|s| s.id.clone())
            .collect()
    };
    let (oo, no) = (order(&o.sections, &new), order(&n.sections, &old));
    if oo != no {
        d.push(
            "sections",
            Some(&oo),
            Some(&no),
            ChangeKind::TextOnly,
            "sections reordered",
        );
    }
}

fn operations(d: &mut Differ, old: &[OperationFacts], new: &[OperationFacts]) {
    use ChangeKind::*;
    let nmap: BTreeMap<String, &OperationFacts> = new.iter().map(|f| (f.key(), f)).collect();
    let omap: BTreeMap<String, &OperationFacts> = old.iter().map(|f| (f.key(), f)).collect();
    for o in old {
        let key = o.key();
        let base = format!("operations.{key}");
        let Some(n) = nmap.get(&key) else {
            d.push(
                base,
                Some(&key),
                None,
                MoreRestrictive,
                format!("`{key}` may no longer be called"),
            );
            continue;
        };
        let (os, ns): (BTreeSet<_>, BTreeSet<_>) =
            (o.scopes.iter().collect(), n.scopes.iter().collect());
        // Scopes are requirements: fewer is more permissive.
        if let Some(k) = set_kind(&ns, &os) {
            d.push(
                format!("{base}.scopes"),
                Some(&o.scopes),
                Some(&n.scopes),
                k,
                format!(
                    "`{key}` needs scopes {:?} instead of {:?}",
                    n.scopes, o.scopes
                ),
            );
        }
        if o.group != n.group {
            d.push(
                format!("{base}.group"),
                Some(&o.group),
                Some(&n.group),
                Neutral,
                format!(
                    "`{key}` counts against limit group {:?} instead of {:?}",
                    n.group, o.group
                ),
            );
        }
        let (oc, nc): (BTreeSet<_>, BTreeSet<_>) =
            (o.categories.iter().collect(), n.categories.iter().collect());
        if let Some(k) = set_kind(&oc, &nc) {
            d.push(
                format!("{base}.categories"),
                Some(&o.categories),
                Some(&n.categories),
                k,
                format!(
                    "`{key}` returns data categories {:?} instead of {:?}",
                    cat_names(&n.categories),
                    cat_names(&o.categories)
                ),
            );
        }
        if let Some(k) = more_is_better(n.sensitivity, o.sensitivity) {
            d.push(
                format!("{base}.sensitivity"),
                Some(&o.sensitivity),
                Some(&n.sensitivity),
                k,
                format!(
                    "`{key}` data is {} instead of {}",
                    n.sensitivity.as_str(),
                    o.sensitivity.as_str()
                ),
            );
        }
        if o.consent_required != n.consent_required {
            let (kind, words) = if n.consent_required {
                (MoreRestrictive, "now needs")
            } else {
                (MorePermissive, "no longer needs")
            };
            d.push(
                format!("{base}.consent_required"),
                Some(&o.consent_required),
                Some(&n.consent_required),
                kind,
                format!("`{key}` {words} the data subject's consent"),
            );
        }
    }
    for n in new {
        let key = n.key();
        if !omap.contains_key(&key) {
            d.push(
                format!("operations.{key}"),
                None,
                Some(&key),
                MorePermissive,
                format!("`{key}` may now be called"),
            );
        }
    }
}

fn cat_names(c: &[Category]) -> Vec<&str> {
    c.iter().map(|c| c.0.as_str()).collect()
}

fn data(d: &mut Differ, o: &DataPolicy, n: &DataPolicy) {
    let (op, np): (BTreeSet<_>, BTreeSet<_>) =
        (o.purposes.iter().collect(), n.purposes.iter().collect());
    if let Some(k) = set_kind(&op, &np) {
        d.push(
            "data.purposes",
            Some(&o.purposes),
            Some(&n.purposes),
            k,
            "the purposes the data may be used for changed",
        );
    }
    if o.retention_days != n.retention_days {
        // No limit is the longest retention.
        let days = |r: Option<u32>| r.map_or(u64::MAX, u64::from);
        let k = more_is_better(days(o.retention_days), days(n.retention_days))
            .unwrap_or(ChangeKind::Neutral);
        let words = |r: Option<u32>| r.map_or("no limit".to_owned(), |n| format!("{n} days"));
        d.push(
            "data.retention_days",
            o.retention_days.as_ref(),
            n.retention_days.as_ref(),
            k,
            format!(
                "data may be kept for {} instead of {}",
                words(n.retention_days),
                words(o.retention_days)
            ),
        );
    }
    if o.regions != n.regions {
        let k = match (&o.regions, &n.regions) {
            (Some(_), None) => ChangeKind::MorePermissive,
            (None, Some(_)) => ChangeKind::MoreRestrictive,
            (Some(a), Some(b)) => {
                let (a, b): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
                set_kind(&a, &b).unwrap_or(ChangeKind::Neutral)
            }
            (None, None) => ChangeKind::Neutral,
        };
        let words = |r: &Option<Vec<String>>| r.as_ref().map_or("any".to_owned(), |r| r.join(", "));
        d.push(
            "data.regions",
            o.regions.as_ref(),
            n.regions.as_ref(),
            k,
            format!(
                "calls are allowed from regions {} instead of {}",
                words(&n.regions),
                words(&o.regions)
            ),
        );
    }
}

fn group_name(g: &Option<String>) -> String {
    g.clone().unwrap_or_else(|| "all".into())
}

fn limits(d: &mut Differ, o: &Limits, n: &Limits) {
    use ChangeKind::*;
    d.field("limits.time_zone", &o.time_zone, &n.time_zone, Neutral);
    let key = |r: &RateLimit| (r.group.clone(), r.per);
    let om: BTreeMap<_, _> = o.rate.iter().map(|r| (key(r), r)).collect();
    let nm: BTreeMap<_, _> = n.rate.iter().map(|r| (key(r), r)).collect();
    for (k, or) in &om {
        let path = format!("limits.rate.{}.{}", group_name(&k.0), k.1.as_str());
        match nm.get(k) {
            None => d.push(
                path,
                Some(*or),
                None,
                MorePermissive,
                format!(
                    "the rate limit of group {} per {} is lifted",
                    group_name(&k.0),
                    k.1.as_str()
                ),
            ),
            Some(nr) => {
                // Counting per credential instead of per subscription gives a subscriber
                // with several keys more room.
                let kinds: Vec<ChangeKind> = [
                    more_is_better(or.requests, nr.requests),
                    more_is_better(or.burst, nr.burst),
                    more_is_better(or.per_credential, nr.per_credential),
                ]
                .into_iter()
                .flatten()
                .collect();
                let kind = match kinds.as_slice() {
                    [] => continue,
                    [first, rest @ ..] if rest.iter().all(|k| k == first) => *first,
                    _ => Mixed,
                };
                d.push(
                    path,
                    Some(*or),
                    Some(*nr),
                    kind,
                    format!(
                        "rate limit of group {}: {} per {} (burst {}{}) instead of {} (burst {}{})",
                        group_name(&k.0),
                        nr.requests,
                        k.1.as_str(),
                        nr.burst.unwrap_or(nr.requests),
                        if nr.per_credential {
                            ", each credential"
                        } else {
                            ""
                        },
                        or.requests,
                        or.burst.unwrap_or(or.requests),
                        if or.per_credential {
                            ", each credential"
                        } else {
                            ""
                        },
                    ),
                );
            }
        }
    }
    for (k, nr) in &nm {
        if !om.contains_key(k) {
            d.push(
                format!("limits.rate.{}.{}", group_name(&k.0), k.1.as_str()),
                None,
                Some(*nr),
                MoreRestrictive,
                format!(
                    "new rate limit of group {}: {} per {}",
                    group_name(&k.0),
                    nr.requests,
                    k.1.as_str()
                ),
            );
        }
    }
    let key = |q: &Quota| (q.group.clone(), q.per);
    let om: BTreeMap<_, _> = o.quota.iter().map(|q| (key(q), q)).collect();
    let nm: BTreeMap<_, _> = n.quota.iter().map(|q| (key(q), q)).collect();
    for (k, oq) in &om {
        let path = format!("limits.quota.{}.{}", group_name(&k.0), k.1.as_str());
        match nm.get(k) {
            None => d.push(
                path,
                Some(*oq),
                None,
                MorePermissive,
                format!(
                    "the quota of group {} per {} is lifted",
                    group_name(&k.0),
                    k.1.as_str()
                ),
            ),
            Some(nq) => {
                if let Some(kind) = more_is_better(oq.requests, nq.requests) {
                    d.push(
                        path,
                        Some(*oq),
                        Some(*nq),
                        kind,
                        format!(
                            "quota of group {}: {} per {} instead of {}",
                            group_name(&k.0),
                            nq.requests,
                            k.1.as_str(),
                            oq.requests
                        ),
                    );
                }
            }
        }
    }
    for (k, nq) in &nm {
        if !om.contains_key(k) {
            d.push(
                format!("limits.quota.{}.{}", group_name(&k.0), k.1.as_str()),
                None,
                Some(*nq),
                MoreRestrictive,
                format!(
                    "new quota of group {}: {} per {}",
                    group_name(&k.0),
                    nq.requests,
                    k.1.as_str()
                ),
            );
        }
    }
}

/// The set of allowed (weekday, minute) pairs; `None` means always.
fn coverage(w: Option<&Windows>) -> Option<BTreeSet<(u8, u16)>> {
    let w = w?;
    if w.allowed.is_empty() {
        return None;
    }
    let mut set = BTreeSet::new();
    for win in &w.allowed {
        for day in &win.days {
            for m in win.from.minutes()..win.to.minutes() {
                set.insert((*day as u8, m));
            }
        }
    }
    Some(set)
}

fn windows(d: &mut Differ, o: Option<&Windows>, n: Option<&Windows>) {
    use ChangeKind::*;
    let words = |w: Option<&Windows>| crate::render::windows_words(w);
    let zone = |w: Option<&Windows>| w.map(|w| w.time_zone.clone());
    let (oc, nc) = (coverage(o), coverage(n));
    let kind = if zone(o) != zone(n) && oc.is_some() && nc.is_some() {
        // The same hours in another zone move both ways.
        Some(Mixed)
    } else {
        match (&oc, &nc) {
            (None, None) => None,
            (Some(_), None) => Some(MorePermissive),
            (None, Some(_)) => Some(MoreRestrictive),
            (Some(a), Some(b)) => set_kind(a, b),
        }
    };
    let allowed = |w: Option<&Windows>| w.map(|w| w.allowed.clone()).unwrap_or_default();
    if let Some(kind) = kind {
        d.push(
            "windows.allowed",
            Some(&allowed(o)),
            Some(&allowed(n)),
            kind,
            format!("calls are allowed {} instead of {}", words(n), words(o)),
        );
    } else if zone(o) != zone(n) {
        d.push(
            "windows.time_zone",
            zone(o).as_ref(),
            zone(n).as_ref(),
            Neutral,
            "the time zone of the windows changed",
        );
    }
    let blackouts = |w: Option<&Windows>| -> BTreeMap<(IsoDate, IsoDate), Blackout> {
        w.map(|w| {
            w.blackout
                .iter()
                .map(|b| ((b.from, b.to.unwrap_or(b.from)), b.clone()))
                .collect()
        })
        .unwrap_or_default()
    };
    let (ob, nb) = (blackouts(o), blackouts(n));
    for (k, b) in &ob {
        match nb.get(k) {
            None => d.push(
                format!("windows.blackout.{}", k.0),
                Some(b),
                None,
                MorePermissive,
                format!("blackout {}–{} removed", k.0, k.1),
            ),
            Some(nbk) if nbk != b => d.push(
                format!("windows.blackout.{}", k.0),
                Some(b),
                Some(nbk),
                TextOnly,
                format!("the reason of blackout {}–{} changed", k.0, k.1),
            ),
            Some(_) => {}
        }
    }
    for (k, b) in &nb {
        if !ob.contains_key(k) {
            d.push(
                format!("windows.blackout.{}", k.0),
                None,
                Some(b),
                MoreRestrictive,
                format!("new blackout {}–{}", k.0, k.1),
            );
        }
    }
}

/// The credit owed at measured availability `a`: that of the lowest threshold above it.
fn credit_at(credits: &[Credit], a: Decimal) -> Decimal {
    credits
        .iter()
        .filter(|c| a < c.below)
        .map(|c| c.credit)
        .max()
        .unwrap_or(Decimal::ZERO)
}

fn sla(d: &mut Differ, o: Option<&Sla>, n: Option<&Sla>) {
    use ChangeKind::*;
    let (o, n) = match (o, n) {
        (None, None) => return,
        (Some(o), None) => {
            d.push(
                "sla",
                Some(o),
                None,
                MoreRestrictive,
                "the SLA is withdrawn",
            );
            return;
        }
        (None, Some(n)) => {
            d.push(
                "sla",
                None,
                Some(n),
                MorePermissive,
                "an SLA is now promised",
            );
            return;
        }
        (Some(o), Some(n)) => (o, n),
    };
    if let Some(k) = more_is_better(o.availability, n.availability) {
        d.push(
            "sla.availability",
            Some(&o.availability.normalize().to_string()),
            Some(&n.availability.normalize().to_string()),
            k,
            format!(
                "availability target {} % instead of {} %",
                n.availability.normalize(),
                o.availability.normalize()
            ),
        );
    }
    if o.latency != n.latency {
        let k = match (&o.latency, &n.latency) {
            (Some(_), None) => MoreRestrictive,
            (None, Some(_)) => MorePermissive,
            (Some(a), Some(b)) => {
                // Faster (fewer ms) and a higher percentile are both stronger promises.
                let ms = more_is_better(b.ms, a.ms);
                let p = more_is_better(a.percentile, b.percentile);
                match (ms, p) {
                    (Some(x), None) | (None, Some(x)) => x,
                    (Some(x), Some(y)) if x == y => x,
                    _ => Mixed,
                }
            }
            (None, None) => Neutral,
        };
        d.push(
            "sla.latency",
            o.latency.as_ref(),
            n.latency.as_ref(),
            k,
            "the latency target changed",
        );
    }
    d.field("sla.window", &o.window, &n.window, Neutral);
    let mut points: BTreeSet<Decimal> = BTreeSet::new();
    for c in o.credits.iter().chain(&n.credits) {
        points.insert(c.below);
        points.insert(c.below - Decimal::new(1, 9));
    }
    let (mut better, mut worse) = (false, false);
    for p in points {
        let (a, b) = (credit_at(&o.credits, p), credit_at(&n.credits, p));
        better |= b > a;
        worse |= b < a;
    }
    let k = match (better, worse) {
        (true, false) => Some(MorePermissive),
        (false, true) => Some(MoreRestrictive),
        (true, true) => Some(Mixed),
        (false, false) => None,
    };
    if let Some(k) = k {
        d.push(
            "sla.credits",
            Some(&o.credits),
            Some(&n.credits),
            k,
            "the service credit schedule changed",
        );
    }
}

fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => Decimal::from_str_exact(s.trim()).ok(),
        _ => None,
    }
}

fn leaves(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(&format!("{prefix}[{i}]"), x, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), v.clone());
        }
    }
}

fn price_direction(path: &str) -> Option<bool> {
    let key = path
        .rsplit(['.', '['])
        .find(|k| !k.ends_with(']'))
        .unwrap_or("")
        .to_ascii_lowercase();
    const ALLOWANCE: [&str; 4] = ["free", "included", "allowance", "discount"];
    const PRICE: [&str; 7] = [
        "price",
        "amount",
        "fee",
        "cost",
        "minimum",
        "commitment",
        "rate",
    ];
    if ALLOWANCE.iter().any(|w| key.contains(w)) {
        Some(false)
    } else if PRICE.iter().any(|w| key.contains(w)) {
        Some(true)
    } else {
        None
    }
}

fn pricing(d: &mut Differ, o: Option<&Pricing>, n: Option<&Pricing>) {
    use ChangeKind::*;
    match (o, n) {
        (Some(Pricing::Inline(a)), Some(Pricing::Inline(b))) => {
            let (mut la, mut lb) = (BTreeMap::new(), BTreeMap::new());
            leaves("pricing", a, &mut la);
            leaves("pricing", b, &mut lb);
            let keys: BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
            for k in keys {
                let (x, y) = (la.get(k), lb.get(k));
                if x == y {
                    continue;
                }
                let kind = match (
                    x.and_then(as_decimal),
                    y.and_then(as_decimal),
                    price_direction(k),
                ) {
                    (Some(p), Some(q), Some(up_is_price_up)) if p != q => {
                        if (q > p) == up_is_price_up {
                            PriceUp
                        } else {
                            PriceDown
                        }
                    }
                    (Some(p), Some(q), _) if p == q => continue,
                    _ => PriceChanged,
                };
                let summary = match (x, y) {
                    (Some(x), Some(y)) => format!("{k}: {y} instead of {x}"),
                    (None, Some(y)) => format!("{k}: {y} added"),
                    (Some(x), None) => format!("{k}: {x} removed"),
                    (None, None) => continue,
                };
                d.push(k.clone(), x, y, kind, summary);
            }
        }
        (a, b) if a != b => d.push(
            "pricing",
            a,
            b,
            PriceChanged,
            "the prices refer to another price version or form",
        ),
        _ => {}
    }
}

fn notice(d: &mut Differ, o: &Notice, n: &Notice) {
    if let Some(k) = more_is_better(o.days, n.days) {
        d.push(
            "notice.days",
            Some(&o.days),
            Some(&n.days),
            k,
            format!("notice of changes is {} days instead of {}", n.days, o.days),
        );
    }
    if o.on_expiry != n.on_expiry {
        let k = match n.on_expiry {
            OnExpiry::Suspend => ChangeKind::MoreRestrictive,
            OnExpiry::Move => ChangeKind::MorePermissive,
        };
        d.push(
            "notice.on_expiry",
            Some(&o.on_expiry),
            Some(&n.on_expiry),
            k,
            format!(
                "when the notice ends, subscriptions are {} instead of {}",
                match n.on_expiry {
                    OnExpiry::Move => "moved",
                    OnExpiry::Suspend => "suspended",
                },
                match o.on_expiry {
                    OnExpiry::Move => "moved",
                    OnExpiry::Suspend => "suspended",
                }
            ),
        );
    }
}

/// The kinds present in `changes`, for a one-line verdict ("2 more restrictive, 1 price
/// up"); in `ChangeKind` order.
pub fn kinds(changes: &[Change]) -> Vec<(ChangeKind, usize)> {
    use ChangeKind::*;
    [
        MoreRestrictive,
        PriceUp,
        PriceChanged,
        Mixed,
        MorePermissive,
        PriceDown,
        TextOnly,
        Neutral,
    ]
    .into_iter()
    .map(|k| (k, changes.iter().filter(|c| c.kind == k).count()))
    .filter(|(_, n)| *n > 0)
    .collect()
}
