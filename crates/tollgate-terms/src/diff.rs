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
//! - **PriceUp / PriceDown** — an amount of two inline price books in the same currency
//!   moved: the base fee, the minimum commitment, a unit, package or tier price, a flat,
//!   fixed, least or largest fee, a percentage — up is PriceUp; an allowance (free units,
//!   free events or amount, trial days, a bigger package) — up is PriceDown. Charges,
//!   meters and tiers are matched by id and position; a charge added is PriceUp, removed
//!   PriceDown. Tiers whose bounds moved are judged by what every quantity costs: dearer
//!   or equal everywhere is PriceUp, cheaper or equal PriceDown.
//! - **PriceChanged** — any other pricing change: the currency (and then every amount),
//!   the pricing model of a charge, a meter, the billing cycle or rounding, the timing of
//!   the base fee, the plan-change policy, tiers dearer for some quantities and cheaper
//!   for others, a reference to another price version, inline prices for a reference.
//! - **TextOnly** — the human text: a section added, removed, changed or moved; the
//!   title; the language.
//! - **Neutral** — identity and bookkeeping: id, version, effective date, jurisdiction,
//!   governing law, limit groups of an operation, the quota time zone, the SLA window,
//!   windows whose coverage is the same, a price book's id, version and grace hours.

use crate::model::*;
use crate::validate::{OperationFacts, ValidatedSheet};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tollgate_billing::{PercentTier, PriceBook, PriceModel, Tier};

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
    pricing(&mut d, old, new);
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

fn pricing(d: &mut Differ, old: &ValidatedSheet, new: &ValidatedSheet) {
    if let (Some(a), Some(b)) = (old.price_book(), new.price_book()) {
        price_books(d, a, b);
        return;
    }
    let (a, b) = (old.sheet().pricing.as_ref(), new.sheet().pricing.as_ref());
    if a != b {
        d.push(
            "pricing",
            a,
            b,
            ChangeKind::PriceChanged,
            "the prices refer to another price version or form",
        );
    }
}

/// Compares amounts of two books: whether they share a currency.
struct Prices<'a> {
    d: &'a mut Differ,
    comparable: bool,
}

impl Prices<'_> {
    /// An amount where more costs the subscriber more (`up_costs_more`) or less (an
    /// allowance). `None` is `absent`: zero for most, no cap for a largest fee.
    fn amount(
        &mut self,
        path: &str,
        o: Option<Decimal>,
        n: Option<Decimal>,
        absent: Decimal,
        up_costs_more: bool,
    ) {
        let (x, y) = (o.unwrap_or(absent), n.unwrap_or(absent));
        if x == y {
            return;
        }
        let kind = if !self.comparable {
            ChangeKind::PriceChanged
        } else if (y > x) == up_costs_more {
            ChangeKind::PriceUp
        } else {
            ChangeKind::PriceDown
        };
        let text = |v: Option<Decimal>| v.map(|v| v.normalize().to_string());
        let words = |v: Option<Decimal>| text(v).unwrap_or_else(|| "none".into());
        let summary = format!("{path}: {} instead of {}", words(n), words(o));
        self.d
            .push(path, text(o).as_ref(), text(n).as_ref(), kind, summary);
    }

    fn price(&mut self, path: &str, o: Decimal, n: Decimal) {
        self.amount(path, Some(o), Some(n), Decimal::ZERO, true);
    }

    /// Any other field: changed is `kind`.
    fn other<T: Serialize + PartialEq + std::fmt::Debug>(
        &mut self,
        path: &str,
        o: &T,
        n: &T,
        kind: ChangeKind,
    ) {
        self.d.field(path, o, n, kind);
    }
}

fn price_books(d: &mut Differ, a: &PriceBook, b: &PriceBook) {
    use ChangeKind::*;
    let mut p = Prices {
        d,
        comparable: a.currency == b.currency,
    };
    p.other("pricing.id", &a.id, &b.id, Neutral);
    p.other("pricing.version", &a.version, &b.version, Neutral);
    p.other("pricing.currency", &a.currency, &b.currency, PriceChanged);
    p.other("pricing.rounding", &a.rounding, &b.rounding, PriceChanged);
    p.other(
        "pricing.billing_cycle",
        &a.billing_cycle,
        &b.billing_cycle,
        PriceChanged,
    );
    p.amount(
        "pricing.trial_days",
        Some(a.trial_days.into()),
        Some(b.trial_days.into()),
        Decimal::ZERO,
        false,
    );
    p.other(
        "pricing.grace_hours",
        &a.grace_hours,
        &b.grace_hours,
        Neutral,
    );
    let fee = |x: &PriceBook| x.base_fee.as_ref().map(|f| f.amount);
    p.amount(
        "pricing.base_fee.amount",
        fee(a),
        fee(b),
        Decimal::ZERO,
        true,
    );
    if let (Some(x), Some(y)) = (&a.base_fee, &b.base_fee) {
        p.other(
            "pricing.base_fee.timing",
            &x.timing,
            &y.timing,
            PriceChanged,
        );
    }
    p.amount(
        "pricing.minimum_commitment",
        a.minimum_commitment,
        b.minimum_commitment,
        Decimal::ZERO,
        true,
    );
    p.other(
        "pricing.plan_changes",
        &a.plan_changes,
        &b.plan_changes,
        PriceChanged,
    );

    let meters = |x: &PriceBook| -> BTreeMap<String, Value> {
        x.meters.iter().map(|m| (m.id.clone(), val(m))).collect()
    };
    let (om, nm) = (meters(a), meters(b));
    for id in om.keys().chain(nm.keys()).collect::<BTreeSet<_>>() {
        let (x, y) = (om.get(id), nm.get(id));
        if x != y {
            let what = match (x, y) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "changed: it measures other usage",
            };
            p.d.push(
                format!("pricing.meters.{id}"),
                x,
                y,
                PriceChanged,
                format!("meter `{id}` {what}"),
            );
        }
    }

    for c in &a.charges {
        let path = format!("pricing.charges.{}", c.id);
        let Some(n) = b.charges.iter().find(|n| n.id == c.id) else {
            p.d.push(
                path,
                Some(c),
                None,
                PriceDown,
                format!("charge `{}` is no longer charged", c.id),
            );
            continue;
        };
        p.other(
            &format!("{path}.description"),
            &c.description,
            &n.description,
            TextOnly,
        );
        p.other(&format!("{path}.meter"), &c.meter, &n.meter, PriceChanged);
        p.amount(
            &format!("{path}.free_units"),
            c.free_units,
            n.free_units,
            Decimal::ZERO,
            false,
        );
        price_models(&mut p, &format!("{path}.price"), &c.price, &n.price);
    }
    for c in &b.charges {
        if !a.charges.iter().any(|o| o.id == c.id) {
            p.d.push(
                format!("pricing.charges.{}", c.id),
                None,
                Some(c),
                PriceUp,
                format!("new charge `{}`", c.id),
            );
        }
    }
}

fn model_name(m: &PriceModel) -> String {
    val(m)
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn price_models(p: &mut Prices<'_>, path: &str, o: &PriceModel, n: &PriceModel) {
    use PriceModel::*;
    let zero = Decimal::ZERO;
    match (o, n) {
        (PerUnit { unit_price: x }, PerUnit { unit_price: y }) => {
            p.price(&format!("{path}.unit_price"), *x, *y);
        }
        (
            Package {
                package_size: xs,
                package_price: xp,
            },
            Package {
                package_size: ys,
                package_price: yp,
            },
        ) => {
            p.amount(
                &format!("{path}.package_size"),
                Some(*xs),
                Some(*ys),
                zero,
                false,
            );
            p.price(&format!("{path}.package_price"), *xp, *yp);
        }
        (Graduated { tiers: x }, Graduated { tiers: y }) => {
            unit_tiers(p, path, x, y, false);
        }
        (Volume { tiers: x }, Volume { tiers: y }) => unit_tiers(p, path, x, y, true),
        (
            Percentage {
                percent: xp,
                fixed_fee: xf,
                min_fee: xmin,
                max_fee: xmax,
                free_events: xe,
                free_amount: xa,
            },
            Percentage {
                percent: yp,
                fixed_fee: yf,
                min_fee: ymin,
                max_fee: ymax,
                free_events: ye,
                free_amount: ya,
            },
        ) => {
            p.price(&format!("{path}.percent"), *xp, *yp);
            p.amount(&format!("{path}.fixed_fee"), *xf, *yf, zero, true);
            p.amount(&format!("{path}.min_fee"), *xmin, *ymin, zero, true);
            // No largest fee is no cap at all.
            p.amount(&format!("{path}.max_fee"), *xmax, *ymax, Decimal::MAX, true);
            let events = |e: &Option<u64>| e.map(Decimal::from);
            p.amount(
                &format!("{path}.free_events"),
                events(xe),
                events(ye),
                zero,
                false,
            );
            p.amount(&format!("{path}.free_amount"), *xa, *ya, zero, false);
        }
        (GraduatedPercentage { tiers: x }, GraduatedPercentage { tiers: y }) => {
            let steps = |t: &[PercentTier]| -> Vec<Step> {
                t.iter()
                    .map(|t| Step {
                        up_to: t.up_to,
                        rate: t.percent / Decimal::ONE_HUNDRED,
                        flat_fee: t.flat_fee,
                    })
                    .collect()
            };
            tiers(p, path, "percent", &steps(x), &steps(y), false);
        }
        _ => {
            let summary = format!(
                "{path}: priced by model {} instead of {}",
                model_name(n),
                model_name(o)
            );
            p.d.push(path, Some(o), Some(n), ChangeKind::PriceChanged, summary);
        }
    }
}

/// One tier of either kind: a rate per unit (or per unit of amount) up to a bound.
struct Step {
    up_to: Option<Decimal>,
    rate: Decimal,
    flat_fee: Option<Decimal>,
}

fn unit_tiers(p: &mut Prices<'_>, path: &str, x: &[Tier], y: &[Tier], volume: bool) {
    let steps = |t: &[Tier]| -> Vec<Step> {
        t.iter()
            .map(|t| Step {
                up_to: t.up_to,
                rate: t.unit_price,
                flat_fee: t.flat_fee,
            })
            .collect()
    };
    tiers(p, path, "unit_price", &steps(x), &steps(y), volume);
}

/// Tiers with the same bounds are compared tier by tier; otherwise by the cost of every
/// quantity (see `cost`).
fn tiers(p: &mut Prices<'_>, path: &str, rate: &str, x: &[Step], y: &[Step], volume: bool) {
    // Back from the rate to the percentage as written.
    let shown = |s: &Step| {
        if rate == "percent" {
            s.rate * Decimal::ONE_HUNDRED
        } else {
            s.rate
        }
    };
    let same_bounds = x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.up_to == b.up_to);
    if same_bounds {
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            p.price(&format!("{path}.tiers[{i}].{rate}"), shown(a), shown(b));
            p.amount(
                &format!("{path}.tiers[{i}].flat_fee"),
                a.flat_fee,
                b.flat_fee,
                Decimal::ZERO,
                true,
            );
        }
        return;
    }
    // The costs differ by a piecewise linear function whose pieces end at the bounds of
    // either version; comparing on both sides of each bound, and beyond the last, sees
    // every sign it takes.
    let eps = Decimal::new(1, 9);
    let bounds: BTreeSet<Decimal> = x.iter().chain(y).filter_map(|s| s.up_to).collect();
    let beyond = bounds
        .last()
        .and_then(|b| b.checked_mul(Decimal::TWO))
        .and_then(|b| b.checked_add(Decimal::ONE))
        .unwrap_or(Decimal::ONE);
    let mut points = vec![eps, beyond];
    for b in &bounds {
        points.extend(
            [*b - eps, *b, *b + eps]
                .into_iter()
                .filter(|q| *q > Decimal::ZERO),
        );
    }
    let (mut dearer, mut cheaper, mut unknown) = (false, false, false);
    for q in points {
        match (cost(x, q, volume), cost(y, q, volume)) {
            (Some(a), Some(b)) => {
                dearer |= b > a;
                cheaper |= b < a;
            }
            _ => unknown = true,
        }
    }
    // Beyond every bound the last tiers' rates decide.
    let last = |t: &[Step]| t.last().map(|s| s.rate);
    dearer |= last(y) > last(x);
    cheaper |= last(y) < last(x);
    use ChangeKind::*;
    let kind = match (dearer, cheaper, unknown || !p.comparable) {
        (_, _, true) | (true, true, _) => PriceChanged,
        (true, false, _) => PriceUp,
        (false, true, _) => PriceDown,
        (false, false, _) => Neutral,
    };
    let words = match kind {
        PriceUp => "no quantity costs less and some cost more",
        PriceDown => "no quantity costs more and some cost less",
        Neutral => "every quantity costs the same",
        _ => "some quantities cost more and others less",
    };
    let json = |t: &[Step]| -> Vec<Value> {
        t.iter()
            .map(|s| {
                serde_json::json!({
                    "up_to": s.up_to.map(|u| u.normalize().to_string()),
                    rate: shown(s).normalize().to_string(),
                    "flat_fee": s.flat_fee.map(|f| f.normalize().to_string()),
                })
            })
            .collect()
    };
    p.d.push(
        format!("{path}.tiers"),
        Some(&json(x)),
        Some(&json(y)),
        kind,
        format!("{path}.tiers: new tier bounds; {words}"),
    );
}

/// The cost of quantity `q` (> 0): graduated, each part at its tier's rate plus the flat
/// fee of each tier reached; by volume, all of it at the rate of the tier it falls in
/// plus that tier's fee. `None` on overflow.
fn cost(tiers: &[Step], q: Decimal, volume: bool) -> Option<Decimal> {
    if volume {
        let t = tiers.iter().find(|t| t.up_to.is_none_or(|u| q <= u))?;
        return q
            .checked_mul(t.rate)?
            .checked_add(t.flat_fee.unwrap_or_default());
    }
    let (mut total, mut lower) = (Decimal::ZERO, Decimal::ZERO);
    for t in tiers {
        if q <= lower {
            break;
        }
        let top = t.up_to.map_or(q, |u| q.min(u));
        let part = (top - lower).checked_mul(t.rate)?;
        total = total
            .checked_add(part)?
            .checked_add(t.flat_fee.unwrap_or_default())?;
        match t.up_to {
            Some(u) => lower = u,
            None => break,
        }
    }
    Some(total)
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
