//! Semantic checks of a term sheet, every problem at once, and the `ValidatedSheet` they
//! produce: the only form that can be hashed, rendered, diffed or compiled to policy. A
//! validated sheet also carries the facts the policy compiler needs, already resolved:
//! one entry per granted operation, the windows with a parsed time zone, the regions,
//! and the price book of inline pricing, parsed and checked by tollgate-billing.

use crate::error::Issue;
use crate::hash;
use crate::model::*;
use crate::pricing;
use crate::vocab;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use tollgate_billing::PriceBook;
use tollgate_core::path_template::PathTemplate;

/// Counts above this cannot be written exactly in canonical JSON (IEEE doubles).
pub(crate) const MAX_COUNT: u64 = (1 << 53) - 1;

/// An operation of an API document, as `tollgate_openapi` lists it, for
/// `validate_against`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownOperation {
    /// The API's slug in the catalog.
    pub api: String,
    /// The `operationId`.
    pub operation_id: String,
    /// Upper-case method.
    pub method: String,
    /// Path template relative to the API's base path.
    pub path: String,
}

impl From<(&str, &str, &str, &str)> for KnownOperation {
    fn from((api, operation_id, method, path): (&str, &str, &str, &str)) -> Self {
        KnownOperation {
            api: api.to_owned(),
            operation_id: operation_id.to_owned(),
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
        }
    }
}

/// Everything the policy compiler and the gateway need to know about one granted
/// operation, with defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFacts {
    /// The API's slug.
    pub api: String,
    /// The operation as the sheet names it.
    pub operation: OperationRef,
    /// The `operationId`, when the sheet names it so or when `validate_against` resolved
    /// a method and path to it.
    pub operation_id: Option<String>,
    /// Index of the grant in `sheet().grants`.
    pub grant: usize,
    /// Scopes the credential must all carry; sorted.
    pub scopes: Vec<String>,
    /// The limit group, if any.
    pub group: Option<String>,
    /// Data categories returned; sorted.
    pub categories: Vec<Category>,
    /// Resolved sensitivity.
    pub sensitivity: Sensitivity,
    /// Resolved: whether a consent token is needed.
    pub consent_required: bool,
}

impl OperationFacts {
    /// `api:operation`, the key used in diffs and policy ids.
    pub fn key(&self) -> String {
        format!("{}:{}", self.api, self.operation)
    }
}

/// The weekly windows and blackouts of a sheet, resolved for evaluation.
#[derive(Debug, Clone)]
pub struct ResolvedWindows {
    /// The zone, from the bundled IANA database.
    pub time_zone: jiff::tz::TimeZone,
    /// Its IANA name.
    pub zone_name: String,
    /// For Monday (index 0) to Sunday, the allowed `[from, to)` minute ranges, sorted,
    /// adjacent ranges merged; `None` when any time of any day is allowed.
    pub weekly: Option<[Vec<(u16, u16)>; 7]>,
    /// Blackout date ranges, both ends included, sorted.
    pub blackouts: Vec<(jiff::civil::Date, jiff::civil::Date)>,
}

/// The local calendar facts of an instant in the windows' zone, as the gateway passes
/// them to the policy (Cedar has no time zones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalFacts {
    pub date: jiff::civil::Date,
    pub weekday: Weekday,
    /// 0–1439.
    pub minute_of_day: u16,
}

/// The outcome of checking an instant against the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowCheck {
    Open,
    /// In the blackout from `.0` to `.1`.
    Blackout(jiff::civil::Date, jiff::civil::Date),
    OutsideHours,
}

impl ResolvedWindows {
    /// The local date, weekday and minute of `at` in the windows' zone.
    pub fn local(&self, at: jiff::Timestamp) -> LocalFacts {
        let dt = self.time_zone.to_datetime(at);
        let weekday =
            Weekday::from_number(dt.weekday().to_monday_one_offset() as u8).unwrap_or(Weekday::Mon);
        LocalFacts {
            date: dt.date(),
            weekday,
            minute_of_day: dt.hour() as u16 * 60 + dt.minute() as u16,
        }
    }

    /// Whether a call at `at` is allowed by the windows and blackouts.
    pub fn check(&self, at: jiff::Timestamp) -> WindowCheck {
        let l = self.local(at);
        if let Some(&(from, to)) = self
            .blackouts
            .iter()
            .find(|(from, to)| *from <= l.date && l.date <= *to)
        {
            return WindowCheck::Blackout(from, to);
        }
        match &self.weekly {
            None => WindowCheck::Open,
            Some(days) => {
                let open = days[l.weekday as usize]
                    .iter()
                    .any(|&(f, t)| f <= l.minute_of_day && l.minute_of_day < t);
                if open {
                    WindowCheck::Open
                } else {
                    WindowCheck::OutsideHours
                }
            }
        }
    }
}

/// A term sheet that passed every check, with its defaults resolved. Equality is
/// equality of the canonical hash.
#[derive(Debug, Clone)]
pub struct ValidatedSheet {
    sheet: TermSheet,
    version: semver::Version,
    operations: Vec<OperationFacts>,
    windows: Option<ResolvedWindows>,
    limits_zone: jiff::tz::TimeZone,
    price_book: Option<PriceBook>,
    canonical: serde_json::Value,
    sha256: String,
}

impl PartialEq for ValidatedSheet {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256
    }
}

impl ValidatedSheet {
    /// The sheet with defaults resolved (see `hash` for which), in the author's order.
    pub fn sheet(&self) -> &TermSheet {
        &self.sheet
    }

    /// The parsed version.
    pub fn version(&self) -> &semver::Version {
        &self.version
    }

    /// One entry per granted operation, in the order of the sheet.
    pub fn operations(&self) -> &[OperationFacts] {
        &self.operations
    }

    /// The facts of one operation, by API slug and operation (id or `METHOD /path`).
    pub fn operation(&self, api: &str, operation: &str) -> Option<&OperationFacts> {
        self.operations.iter().find(|o| {
            o.api == api
                && (o.operation.to_string() == operation
                    || o.operation_id.as_deref() == Some(operation))
        })
    }

    /// The windows, if the sheet restricts when calls are allowed.
    pub fn windows(&self) -> Option<&ResolvedWindows> {
        self.windows.as_ref()
    }

    /// Allowed regions; `None` means any.
    pub fn regions(&self) -> Option<&[String]> {
        self.sheet.data.regions.as_deref()
    }

    /// Permitted purposes; empty means any.
    pub fn purposes(&self) -> &[Purpose] {
        &self.sheet.data.purposes
    }

    /// The zone in which quota days and calendar months begin.
    pub fn limits_time_zone(&self) -> &jiff::tz::TimeZone {
        &self.limits_zone
    }

    /// The rate limits that count calls of `op`: its group's and the sheet-wide ones.
    pub fn rate_limits_for<'a>(
        &'a self,
        op: &'a OperationFacts,
    ) -> impl Iterator<Item = &'a RateLimit> + 'a {
        self.sheet
            .limits
            .rate
            .iter()
            .filter(move |r| r.group.is_none() || r.group == op.group)
    }

    /// The quotas that count calls of `op`: its group's and the sheet-wide ones.
    pub fn quotas_for<'a>(
        &'a self,
        op: &'a OperationFacts,
    ) -> impl Iterator<Item = &'a Quota> + 'a {
        self.sheet
            .limits
            .quota
            .iter()
            .filter(move |q| q.group.is_none() || q.group == op.group)
    }

    /// The price book of inline pricing, validated, in its canonical form (decimals in
    /// their shortest form, defaults written out), ready to rate usage with; `None` when
    /// the sheet prices by reference or sets no prices. `sheet().pricing` holds the same
    /// book as JSON.
    pub fn price_book(&self) -> Option<&PriceBook> {
        self.price_book.as_ref()
    }

    /// The price version the sheet refers to, when it prices by reference. Whoever
    /// fetches that book checks it against `sha256` (`PriceBook::sha256`).
    pub fn price_ref(&self) -> Option<&PriceRef> {
        match &self.sheet.pricing {
            Some(Pricing::Ref(r)) => Some(r),
            _ => None,
        }
    }

    /// The canonical JSON value that is hashed (see `hash`).
    pub fn canonical_json(&self) -> &serde_json::Value {
        &self.canonical
    }

    /// The sheet's identity: lowercase hex SHA-256 over the RFC 8785 canonical JSON of
    /// `canonical_json()`.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// Checks `sheet` on its own (operation names are not checked against any API).
pub fn validate(sheet: &TermSheet) -> Result<ValidatedSheet, Vec<Issue>> {
    check(sheet, None)
}

/// Checks `sheet` and that every granted operation exists in `ops`. Every API a grant
/// names must have at least one operation in `ops`.
pub fn validate_against(
    sheet: &TermSheet,
    ops: &[KnownOperation],
) -> Result<ValidatedSheet, Vec<Issue>> {
    check(sheet, Some(ops))
}

struct Issues(Vec<Issue>);

impl Issues {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            field: field.into(),
            message: message.into(),
        });
    }
}

fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_jurisdiction(s: &str) -> bool {
    let (country, sub) = match s.split_once('-') {
        Some((c, s)) => (c, Some(s)),
        None => (s, None),
    };
    country.len() == 2
        && country.chars().all(|c| c.is_ascii_uppercase())
        && sub.is_none_or(|s| {
            (1..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn zone(name: &str) -> Option<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(name).ok()
}

fn check(
    sheet: &TermSheet,
    known: Option<&[KnownOperation]>,
) -> Result<ValidatedSheet, Vec<Issue>> {
    let mut is = Issues(Vec::new());

    // Identity.
    if !is_slug(&sheet.id, 63) {
        is.push(
            "id",
            "must be 1–63 lowercase letters, digits or '-', not starting or ending with '-'",
        );
    }
    let version = match semver::Version::parse(&sheet.version) {
        Ok(v) => Some(v),
        Err(e) => {
            is.push("version", format!("is not a semantic version (1.2.3): {e}"));
            None
        }
    };
    if sheet.title.trim().is_empty() {
        is.push("title", "must not be empty");
    }
    if !is_jurisdiction(&sheet.jurisdiction) {
        is.push(
            "jurisdiction",
            "must be an ISO 3166 code such as FR, US-CA or EU",
        );
    }
    if sheet.governing_law.trim().is_empty() {
        is.push("governing_law", "must not be empty");
    }
    if !is_language_tag(&sheet.language) {
        is.push(
            "language",
            "must be a BCP 47 language tag such as en or fr-CH",
        );
    }

    // Sections.
    let mut section_ids = BTreeMap::new();
    for (i, s) in sheet.sections.iter().enumerate() {
        let f = format!("sections[{i}]");
        if !is_slug(&s.id, 63) {
            is.push(
                format!("{f}.id"),
                "must be a slug (lowercase letters, digits, '-')",
            );
        } else if let Some(j) = section_ids.insert(s.id.clone(), i) {
            is.push(
                format!("{f}.id"),
                format!("{:?} is also the id of sections[{j}]", s.id),
            );
        }
        if s.title.trim().is_empty() {
            is.push(format!("{f}.title"), "must not be empty");
        }
        if s.body.trim().is_empty() {
            is.push(format!("{f}.body"), "must not be empty");
        }
    }

    // Grants.
    if sheet.grants.is_empty() {
        is.push("grants", "grants nothing; list at least one operation");
    }
    let mut groups = BTreeSet::new();
    let mut seen_ops: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut any_personal = false;
    let mut facts = Vec::new();
    let known_apis: BTreeSet<&str> = known
        .unwrap_or_default()
        .iter()
        .map(|k| k.api.as_str())
        .collect();
    for (i, g) in sheet.grants.iter().enumerate() {
        let f = format!("grants[{i}]");
        let api_ok = is_slug(&g.api, 63);
        if !api_ok {
            is.push(format!("{f}.api"), "must be an API slug");
        } else if known.is_some() && !known_apis.contains(g.api.as_str()) {
            is.push(
                format!("{f}.api"),
                format!("unknown API {:?}: no operations of it were given", g.api),
            );
        }
        if g.operations.is_empty() {
            is.push(
                format!("{f}.operations"),
                "must list at least one operation",
            );
        }
        let mut resolved_ids = Vec::new();
        for (j, op) in g.operations.iter().enumerate() {
            let of = format!("{f}.operations[{j}]");
            let mut resolved: Option<String> = match op {
                OperationRef::Id(id) => Some(id.clone()),
                OperationRef::Route { .. } => None,
            };
            if let Some(known) = known.filter(|_| known_apis.contains(g.api.as_str())) {
                match find_known(known, &g.api, op) {
                    Some(k) => resolved = Some(k.operation_id.clone()),
                    None => is.push(
                        of.clone(),
                        format!("unknown operation {:?} of API {:?}", op.to_string(), g.api),
                    ),
                }
            }
            // Two names of one operation (id and route) collide once resolved.
            let key = (
                g.api.clone(),
                resolved.clone().unwrap_or_else(|| route_key(op)),
            );
            if let Some(prev) = seen_ops.insert(key, of.clone()) {
                is.push(of.clone(), format!("{op} is already granted at {prev}"));
            }
            resolved_ids.push(resolved);
        }
        let mut scopes = BTreeSet::new();
        for (j, s) in g.scopes.iter().enumerate() {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '`' || c == '"') {
                is.push(
                    format!("{f}.scopes[{j}]"),
                    "must be a scope name without spaces or quotes",
                );
            } else if !scopes.insert(s.clone()) {
                is.push(format!("{f}.scopes[{j}]"), format!("{s:?} is listed twice"));
            }
        }
        if let Some(group) = &g.group {
            if !is_slug(group, 63) {
                is.push(format!("{f}.group"), "must be a slug");
            }
            groups.insert(group.clone());
        }
        // Data facts.
        let mut cats = BTreeSet::new();
        let mut special = false;
        for (j, c) in g.data.categories.iter().enumerate() {
            let cf = format!("{f}.data.categories[{j}]");
            if vocab::lookup(vocab::CATEGORIES, &c.0).is_none() && !vocab::is_extension(&c.0) {
                is.push(
                    cf,
                    format!(
                        "unknown data category {:?}; use one of {} or an x- extension",
                        c.0,
                        names(vocab::CATEGORIES)
                    ),
                );
            } else if !cats.insert(c.clone()) {
                is.push(cf, format!("{:?} is listed twice", c.0));
            }
            special |= vocab::is_special_category(&c.0);
        }
        let floor = if special {
            Sensitivity::Sensitive
        } else if cats.is_empty() {
            Sensitivity::Public
        } else {
            Sensitivity::Personal
        };
        any_personal |= !cats.is_empty();
        let sensitivity = g.data.sensitivity.unwrap_or(floor);
        if sensitivity < floor {
            is.push(
                format!("{f}.data.sensitivity"),
                format!(
                    "is {} but the categories make the data at least {}",
                    sensitivity.as_str(),
                    floor.as_str()
                ),
            );
        }
        let consent = g
            .data
            .consent_required
            .unwrap_or(sensitivity == Sensitivity::Sensitive);
        // Judged on the level the data really has, so a too-low sensitivity does not
        // hide this second problem.
        if !consent && sensitivity.max(floor) == Sensitivity::Sensitive {
            is.push(
                format!("{f}.data.consent_required"),
                "cannot be false for sensitive data: every call needs the data subject's consent",
            );
        }
        for (op, id) in g.operations.iter().zip(resolved_ids) {
            facts.push(OperationFacts {
                api: g.api.clone(),
                operation: op.clone(),
                operation_id: id,
                grant: i,
                scopes: scopes.iter().cloned().collect(),
                group: g.group.clone(),
                categories: cats.iter().cloned().collect(),
                sensitivity,
                consent_required: consent,
            });
        }
    }

    // Data policy.
    let mut purposes = BTreeSet::new();
    for (j, p) in sheet.data.purposes.iter().enumerate() {
        let pf = format!("data.purposes[{j}]");
        if vocab::lookup(vocab::PURPOSES, &p.0).is_none() && !vocab::is_extension(&p.0) {
            is.push(
                pf,
                format!(
                    "unknown purpose {:?}; use one of {} or an x- extension",
                    p.0,
                    names(vocab::PURPOSES)
                ),
            );
        } else if !purposes.insert(p.clone()) {
            is.push(pf, format!("{:?} is listed twice", p.0));
        }
    }
    if any_personal && sheet.data.purposes.is_empty() {
        is.push(
            "data.purposes",
            "operations return personal data: list the purposes it may be used for",
        );
    }
    if let Some(regions) = &sheet.data.regions {
        if regions.is_empty() {
            is.push(
                "data.regions",
                "an empty list allows no region; omit the field to allow any",
            );
        }
        let mut seen = BTreeSet::new();
        for (j, r) in regions.iter().enumerate() {
            if !is_slug(r, 63) {
                is.push(
                    format!("data.regions[{j}]"),
                    "must be a region name (a slug)",
                );
            } else if !seen.insert(r) {
                is.push(
                    format!("data.regions[{j}]"),
                    format!("{r:?} is listed twice"),
                );
            }
        }
    }

    // Limits.
    let limits_zone = match &sheet.limits.time_zone {
        None => Some(jiff::tz::TimeZone::UTC),
        Some(z) => {
            let tz = zone(z);
            if tz.is_none() {
                is.push(
                    "limits.time_zone",
                    format!("{z:?} is not an IANA time zone"),
                );
            }
            tz
        }
    };
    let mut seen_rate = BTreeMap::new();
    for (j, r) in sheet.limits.rate.iter().enumerate() {
        let f = format!("limits.rate[{j}]");
        check_count(&mut is, &format!("{f}.requests"), r.requests);
        if let Some(b) = r.burst {
            check_count(&mut is, &format!("{f}.burst"), b);
        }
        check_group(&mut is, &f, r.group.as_deref(), &groups);
        if let Some(prev) = seen_rate.insert((r.group.clone(), r.per), j) {
            is.push(
                f,
                format!(
                    "limits.rate[{prev}] already limits this group per {}",
                    r.per.as_str()
                ),
            );
        }
    }
    let mut seen_quota = BTreeMap::new();
    for (j, q) in sheet.limits.quota.iter().enumerate() {
        let f = format!("limits.quota[{j}]");
        check_count(&mut is, &format!("{f}.requests"), q.requests);
        check_group(&mut is, &f, q.group.as_deref(), &groups);
        if let Some(prev) = seen_quota.insert((q.group.clone(), q.per), j) {
            is.push(
                f,
                format!(
                    "limits.quota[{prev}] already sets a quota for this group per {}",
                    q.per.as_str()
                ),
            );
        }
    }

    // Windows.
    let windows = sheet
        .windows
        .as_ref()
        .and_then(|w| check_windows(&mut is, w, sheet.effective));

    // SLA.
    if let Some(sla) = &sheet.sla {
        let hundred = Decimal::from(100);
        if sla.availability <= Decimal::ZERO || sla.availability > hundred {
            is.push(
                "sla.availability",
                "must be a percentage above 0 and at most 100",
            );
        }
        if let Some(l) = &sla.latency {
            if !(1..=99).contains(&l.percentile) {
                is.push("sla.latency.percentile", "must be 1–99");
            }
            if l.ms == 0 {
                is.push("sla.latency.ms", "must be at least 1");
            }
        }
        let mut order: Vec<usize> = (0..sla.credits.len()).collect();
        order.sort_by(|&a, &b| sla.credits[b].below.cmp(&sla.credits[a].below));
        for (j, c) in sla.credits.iter().enumerate() {
            let f = format!("sla.credits[{j}]");
            if c.below <= Decimal::ZERO || c.below > sla.availability {
                is.push(
                    format!("{f}.below"),
                    format!(
                        "must be above 0 and at most the availability target ({} %)",
                        sla.availability.normalize()
                    ),
                );
            }
            if c.credit <= Decimal::ZERO || c.credit > hundred {
                is.push(format!("{f}.credit"), "must be above 0 and at most 100");
            }
        }
        for w in order.windows(2) {
            let (hi, lo) = (&sla.credits[w[0]], &sla.credits[w[1]]);
            if hi.below == lo.below {
                is.push(
                    format!("sla.credits[{}].below", w[1]),
                    format!(
                        "threshold {} % is also used by sla.credits[{}]",
                        lo.below.normalize(),
                        w[0]
                    ),
                );
            } else if lo.credit <= hi.credit {
                is.push(
                    format!("sla.credits[{}].credit", w[1]),
                    format!(
                        "credits are not monotonic: below {} % gives {} %, not more than the {} % given below {} %",
                        lo.below.normalize(),
                        lo.credit.normalize(),
                        hi.credit.normalize(),
                        hi.below.normalize()
                    ),
                );
            }
        }
    }

    // Pricing.
    let mut price_book = None;
    match &sheet.pricing {
        Some(Pricing::Inline(v)) => {
            let (book, issues) = pricing::check_inline(v);
            is.0.extend(issues);
            if let Some(book) = &book {
                is.0.extend(pricing::check_quota_periods(sheet, book));
            }
            price_book = book;
        }
        Some(Pricing::Ref(r)) => {
            if r.id.trim().is_empty() {
                is.push("pricing.ref.id", "must not be empty");
            }
            if r.sha256.len() != 64
                || !r
                    .sha256
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                is.push("pricing.ref.sha256", "must be 64 lowercase hex digits");
            }
        }
        None => {}
    }

    if !is.0.is_empty() {
        return Err(is.0);
    }
    let (Some(version), Some(limits_zone)) = (version, limits_zone) else {
        // Both are reported above when missing.
        return Err(is.0);
    };
    let resolved = resolve_defaults(sheet, &facts, price_book.as_ref());
    let canonical = hash::canonical(&resolved);
    let sha256 = tollgate_core::hash::canonical_sha256(&canonical).unwrap_or_default();
    Ok(ValidatedSheet {
        sheet: resolved,
        version,
        operations: facts,
        windows,
        limits_zone,
        price_book,
        canonical,
        sha256,
    })
}

fn names(vocab: &[vocab::Term]) -> String {
    vocab.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

fn route_key(op: &OperationRef) -> String {
    match op {
        OperationRef::Id(id) => id.clone(),
        OperationRef::Route { method, path } => {
            // Parameter names do not distinguish routes: `/a/{x}` is `/a/{y}`.
            let shape = PathTemplate::parse(path)
                .map(|t| {
                    t.segments()
                        .iter()
                        .map(|s| match s {
                            tollgate_core::path_template::Segment::Literal(l) => l.clone(),
                            tollgate_core::path_template::Segment::Param(_) => "{}".into(),
                        })
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_else(|_| path.clone());
            format!("{method} /{shape}")
        }
    }
}

fn find_known<'a>(
    known: &'a [KnownOperation],
    api: &str,
    op: &OperationRef,
) -> Option<&'a KnownOperation> {
    known.iter().filter(|k| k.api == api).find(|k| match op {
        OperationRef::Id(id) => &k.operation_id == id,
        OperationRef::Route { method, path } => {
            k.method.eq_ignore_ascii_case(method)
                && match (PathTemplate::parse(path), PathTemplate::parse(&k.path)) {
                    (Ok(a), Ok(b)) => a.same_shape(&b),
                    _ => false,
                }
        }
    })
}

fn check_count(is: &mut Issues, field: &str, n: u64) {
    if n == 0 {
        is.push(field, "must be at least 1");
    } else if n > MAX_COUNT {
        is.push(field, format!("must be at most {MAX_COUNT}"));
    }
}

fn check_group(is: &mut Issues, f: &str, group: Option<&str>, groups: &BTreeSet<String>) {
    if let Some(g) = group
        && !groups.contains(g)
    {
        is.push(
            format!("{f}.group"),
            format!("no grant is in group {g:?}; set `group: {g}` on a grant or fix the name"),
        );
    }
}

fn check_windows(is: &mut Issues, w: &Windows, effective: IsoDate) -> Option<ResolvedWindows> {
    let tz = zone(&w.time_zone);
    if tz.is_none() {
        is.push(
            "windows.time_zone",
            format!(
                "{:?} is not an IANA time zone (e.g. Europe/Paris)",
                w.time_zone
            ),
        );
    }
    let mut days: [Vec<(u16, u16, usize)>; 7] = Default::default();
    for (i, win) in w.allowed.iter().enumerate() {
        let f = format!("windows.allowed[{i}]");
        if win.days.is_empty() {
            is.push(format!("{f}.days"), "is empty: the window never applies");
        }
        let (from, to) = (win.from.minutes(), win.to.minutes());
        if from >= to {
            is.push(
                format!("{f}.to"),
                format!(
                    "must be after from ({} to {} is {}); split a window that crosses midnight in two",
                    win.from,
                    win.to,
                    if from == to { "empty" } else { "backwards" }
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (j, d) in win.days.iter().enumerate() {
            if !seen.insert(*d) {
                is.push(
                    format!("{f}.days[{j}]"),
                    format!("{} is listed twice", d.as_str()),
                );
                continue;
            }
            if from >= to {
                continue;
            }
            for &(of, ot, oi) in &days[*d as usize] {
                if from < ot && of < to {
                    is.push(
                        f.clone(),
                        format!(
                            "overlaps windows.allowed[{oi}] on {} ({}–{} and {}–{})",
                            d.name(),
                            win.from,
                            win.to,
                            fmt_min(of),
                            fmt_min(ot)
                        ),
                    );
                }
            }
            days[*d as usize].push((from, to, i));
        }
    }
    let mut blackouts = Vec::new();
    for (i, b) in w.blackout.iter().enumerate() {
        let f = format!("windows.blackout[{i}]");
        let to = b.to.unwrap_or(b.from);
        if to < b.from {
            is.push(
                format!("{f}.to"),
                format!("{to} is before from ({})", b.from),
            );
            continue;
        }
        if to < effective {
            is.push(
                f.clone(),
                format!("ends before the sheet takes effect ({effective}), so it never applies"),
            );
        }
        for (j, &(pf, pt)) in blackouts.iter().enumerate() {
            if b.from.0 <= pt && pf <= to.0 {
                is.push(f.clone(), format!("overlaps windows.blackout[{j}]"));
            }
        }
        blackouts.push((b.from.0, to.0));
    }
    blackouts.sort();
    let tz = tz?;
    let weekly = (!w.allowed.is_empty()).then(|| {
        days.map(|mut v| {
            v.sort();
            let mut merged: Vec<(u16, u16)> = Vec::new();
            for (f, t, _) in v {
                match merged.last_mut() {
                    Some(last) if last.1 >= f => last.1 = last.1.max(t),
                    _ => merged.push((f, t)),
                }
            }
            merged
        })
    });
    Some(ResolvedWindows {
        time_zone: tz,
        zone_name: w.time_zone.clone(),
        weekly,
        blackouts,
    })
}

fn fmt_min(m: u16) -> String {
    ClockTime::from_minutes(m)
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// Fills every default in (see `hash` for the list), keeping the author's order.
fn resolve_defaults(
    sheet: &TermSheet,
    facts: &[OperationFacts],
    book: Option<&PriceBook>,
) -> TermSheet {
    let mut s = sheet.clone();
    if let Some(book) = book {
        // The book as billing writes it: the same prices spelled differently (`"490.00"`
        // or `"490"`, a default omitted or written) are the same terms, with one hash.
        s.pricing = Some(Pricing::Inline(
            serde_json::to_value(book).unwrap_or_default(),
        ));
    }
    for sec in &mut s.sections {
        sec.body = normalize_text(&sec.body);
    }
    for (i, g) in s.grants.iter_mut().enumerate() {
        if let Some(f) = facts.iter().find(|f| f.grant == i) {
            g.data.sensitivity = Some(f.sensitivity);
            g.data.consent_required = Some(f.consent_required);
        }
    }
    if s.limits.time_zone.is_none() {
        s.limits.time_zone = Some("UTC".into());
    }
    for r in &mut s.limits.rate {
        r.burst.get_or_insert(r.requests);
    }
    if let Some(w) = &mut s.windows {
        for b in &mut w.blackout {
            b.to.get_or_insert(b.from);
        }
    }
    if let Some(sla) = &mut s.sla {
        sla.window.get_or_insert(SlaWindow::CalendarMonth);
        sla.availability = sla.availability.normalize();
        for c in &mut sla.credits {
            c.below = c.below.normalize();
            c.credit = c.credit.normalize();
        }
    }
    s
}

/// Line endings to `\n` and trailing white space of the whole text dropped: neither
/// changes what Markdown shows. (Trailing spaces inside the text are kept: two of them
/// make a line break.)
pub(crate) fn normalize_text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim_end()
        .to_owned()
}
