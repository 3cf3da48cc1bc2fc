//! Human-readable renderings of a validated sheet: Markdown, and HTML made from that
//! Markdown by pulldown-cmark. The human sections come first, then every machine clause
//! in plain words ("You may call `getWeather` up to 10 times per second …"), so what a
//! person reads is exactly what the gateway enforces.
//!
//! The HTML is safe to embed in the portal: raw HTML in the provider's Markdown is shown
//! as text, and links with `javascript:`, `vbscript:` or `data:` targets are neutralised.

use crate::model::*;
use crate::validate::{OperationFacts, ValidatedSheet};
use crate::vocab;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use rust_decimal::Decimal;
use std::fmt::Write;
use tollgate_billing::{
    Aggregate, Anchor, BaseFee, Charge, Interval, Meter, PercentTier, PriceBook, PriceModel, Tier,
    Timing,
};

/// The whole sheet as Markdown.
pub fn markdown(v: &ValidatedSheet) -> String {
    let s = v.sheet();
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape(&s.title));
    let _ = writeln!(
        out,
        "Terms `{}`, version {}, effective {}. Governed by {} (jurisdiction {}). Language: {}.\n",
        s.id,
        v.version(),
        s.effective,
        escape(&s.governing_law),
        s.jurisdiction,
        s.language
    );
    let _ = writeln!(out, "Content hash (SHA-256): `{}`\n", v.sha256());

    for sec in &s.sections {
        let _ = writeln!(out, "## {}\n\n{}\n", escape(&sec.title), sec.body);
    }

    out.push_str("## What you may call\n\n");
    for (i, g) in s.grants.iter().enumerate() {
        let ops: Vec<&OperationFacts> = v.operations().iter().filter(|o| o.grant == i).collect();
        let _ = writeln!(out, "- {}", grant_sentence(v, g, &ops));
    }
    let wide = sheet_wide_limits(s);
    if !wide.is_empty() {
        let _ = writeln!(
            out,
            "\nAcross all operations together, you may make {}.",
            wide
        );
    }
    if let Some(w) = &s.windows {
        for b in &w.blackout {
            let to = b.to.unwrap_or(b.from);
            let when = if to == b.from {
                format!("on {}", b.from)
            } else {
                format!("from {} to {}", b.from, to)
            };
            let why = b
                .reason
                .as_deref()
                .map(|r| format!(" ({})", escape(r)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "\nNo calls are allowed {when}{why}, {} time.",
                w.time_zone
            );
        }
    }
    out.push_str("\nOperations not listed here are not part of these terms.\n\n");

    out.push_str("## Your data\n\n");
    out.push_str(&data_text(v));

    if let Some(sla) = &s.sla {
        out.push_str("## Service level\n\n");
        out.push_str(&sla_text(sla));
    }

    out.push_str("## Prices\n\n");
    match &s.pricing {
        None => out.push_str("These terms set no prices.\n\n"),
        Some(Pricing::Ref(r)) => {
            let _ = writeln!(
                out,
                "Prices are those of price version `{}` (SHA-256 `{}`); they cannot change without a new version of these terms.\n",
                r.id.replace('`', "'"),
                r.sha256
            );
        }
        Some(Pricing::Inline(p)) => match v.price_book() {
            Some(book) => out.push_str(&price_book_text(book)),
            // A validated sheet always has its book; the data is shown rather than lost.
            None => {
                let json = serde_json::to_string_pretty(p).unwrap_or_default();
                let _ = writeln!(out, "~~~json\n{}\n~~~\n", json.replace("~~~", "~ ~ ~"));
            }
        },
    }

    out.push_str("## Changes and termination\n\n");
    let n = &s.notice;
    let then = match n.on_expiry {
        OnExpiry::Move => "moves to the new version",
        OnExpiry::Suspend => "is suspended (calls are refused) until you accept the new version",
    };
    let _ = writeln!(
        out,
        "A new version of these terms is announced at least {} before it replaces this one. Until then your subscription stays on the version you accepted; when the notice ends, a subscription that has not accepted the new version {then}.",
        plural(u64::from(n.days), "day")
    );
    out
}

/// The whole sheet as an HTML fragment (no `<html>`/`<body>`), from `markdown`.
pub fn html(v: &ValidatedSheet) -> String {
    markdown_to_html(&markdown(v))
}

/// Markdown to HTML with raw HTML escaped and dangerous link targets removed.
pub fn markdown_to_html(md: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(md, opts).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    if ["javascript:", "vbscript:", "data:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        CowStr::Borrowed("#")
    } else {
        url
    }
}

/// Escapes the characters Markdown gives meaning to, for plain text from the sheet.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '<'
                | '>'
                | '('
                | ')'
                | '#'
                | '+'
                | '!'
                | '|'
                | '~'
                | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

/// `100000` → `100 000`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{} {unit}s", group_digits(n))
    }
}

fn join_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn rate_words(r: &RateLimit, unit: &str) -> String {
    let burst = match r.burst {
        Some(b) if b != r.requests => format!(" (bursts of up to {})", group_digits(b)),
        _ => String::new(),
    };
    let each = if r.per_credential {
        " for each credential"
    } else {
        ""
    };
    format!(
        "{} per {}{burst}{each}",
        plural(r.requests, unit),
        r.per.as_str()
    )
}

fn quota_words(q: &Quota, unit: &str) -> String {
    let per = match q.per {
        QuotaPeriod::Day => "day",
        QuotaPeriod::CalendarMonth => "calendar month",
        QuotaPeriod::BillingPeriod => "billing period",
    };
    format!("{} per {per}", plural(q.requests, unit))
}

fn limit_words<'a>(
    unit: &str,
    rates: impl Iterator<Item = &'a RateLimit>,
    quotas: impl Iterator<Item = &'a Quota>,
) -> Vec<String> {
    let mut rates: Vec<&RateLimit> = rates.collect();
    rates.sort_by_key(|r| r.per);
    let mut quotas: Vec<&Quota> = quotas.collect();
    quotas.sort_by_key(|q| q.per);
    rates
        .into_iter()
        .map(|r| rate_words(r, unit))
        .chain(quotas.into_iter().map(|q| quota_words(q, unit)))
        .collect()
}

fn sheet_wide_limits(s: &TermSheet) -> String {
    let words = limit_words(
        "call",
        s.limits.rate.iter().filter(|r| r.group.is_none()),
        s.limits.quota.iter().filter(|q| q.group.is_none()),
    );
    join_words(&words)
}

/// "Monday–Friday 08:00–18:00 and Saturday 09:00–12:00 Europe/Paris", or "at any time".
pub fn windows_words(w: Option<&Windows>) -> String {
    let Some(w) = w else {
        return "at any time".into();
    };
    if w.allowed.is_empty() {
        return format!("at any time ({})", w.time_zone);
    }
    // Per day, its ranges as text; then runs of consecutive days with the same text.
    let mut per_day: Vec<Vec<(ClockTime, ClockTime)>> = vec![Vec::new(); 7];
    for win in &w.allowed {
        for d in &win.days {
            per_day[*d as usize].push((win.from, win.to));
        }
    }
    let texts: Vec<String> = per_day
        .iter_mut()
        .map(|r| {
            r.sort();
            r.iter()
                .map(|(f, t)| format!("{f}–{t}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < 7 {
        if texts[i].is_empty() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < 7 && texts[j + 1] == texts[i] {
            j += 1;
        }
        let days = match j - i {
            0 => Weekday::ALL[i].name().to_owned(),
            1 => format!("{} and {}", Weekday::ALL[i].name(), Weekday::ALL[j].name()),
            _ => format!("{}–{}", Weekday::ALL[i].name(), Weekday::ALL[j].name()),
        };
        parts.push(format!("{days} {}", texts[i]));
        i = j + 1;
    }
    format!("{} {}", join_words(&parts), w.time_zone)
}

fn grant_sentence(v: &ValidatedSheet, g: &Grant, ops: &[&OperationFacts]) -> String {
    let s = v.sheet();
    let names: Vec<String> = g.operations.iter().map(|o| code(&o.to_string())).collect();
    let together = if names.len() > 1 { " (together)" } else { "" };
    let mut out = format!(
        "You may call {} of the {} API",
        join_words(&names),
        code(&g.api)
    );
    let limits = match ops.first() {
        Some(op) => limit_words(
            "time",
            v.rate_limits_for(op).filter(|r| r.group.is_some()),
            v.quotas_for(op).filter(|q| q.group.is_some()),
        ),
        None => Vec::new(),
    };
    if !limits.is_empty() {
        let _ = write!(out, "{together} up to {}", join_words(&limits));
    }
    let _ = write!(out, ", {}.", windows_words(s.windows.as_ref()));
    if !g.scopes.is_empty() {
        let scopes: Vec<String> = g.scopes.iter().map(|x| code(x)).collect();
        let _ = write!(
            out,
            " Your credential needs the scope{} {}.",
            if scopes.len() > 1 { "s" } else { "" },
            join_words(&scopes)
        );
    }
    if let Some(op) = ops.first() {
        if op.categories.is_empty() {
            out.push_str(" They return no personal data.");
        } else {
            let cats: Vec<String> = op
                .categories
                .iter()
                .map(|c| vocab::words(vocab::CATEGORIES, &c.0))
                .collect();
            let _ = write!(
                out,
                " They return {} data: {}.",
                op.sensitivity.as_str(),
                join_words(&cats)
            );
        }
        if op.consent_required {
            out.push_str(" Each call needs a valid consent token of the data subject.");
        }
    }
    out
}

fn data_text(v: &ValidatedSheet) -> String {
    let d = &v.sheet().data;
    let mut out = String::new();
    if d.purposes.is_empty() {
        out.push_str("- The terms do not restrict the purposes of use.\n");
    } else {
        let p: Vec<String> = d
            .purposes
            .iter()
            .map(|p| vocab::words(vocab::PURPOSES, &p.0))
            .collect();
        let _ = writeln!(out, "- You may use the data only for {}.", join_words(&p));
    }
    match d.retention_days {
        None => out.push_str("- The terms set no retention limit.\n"),
        Some(0) => out.push_str("- You may not keep the data beyond answering the request.\n"),
        Some(n) => {
            let _ = writeln!(
                out,
                "- You may keep the data for at most {}.",
                plural(u64::from(n), "day")
            );
        }
    }
    match &d.regions {
        None => out.push_str("- Calls are allowed from any region.\n"),
        Some(r) => {
            let r: Vec<String> = r.iter().map(|x| code(x)).collect();
            let _ = writeln!(
                out,
                "- Calls are allowed only from the region{} {} (as the marketplace maps client addresses to regions).",
                if r.len() > 1 { "s" } else { "" },
                join_words(&r)
            );
        }
    }
    out.push('\n');
    out
}

fn sla_text(sla: &Sla) -> String {
    let window = match sla.window.unwrap_or(SlaWindow::CalendarMonth) {
        SlaWindow::Day => "day",
        SlaWindow::CalendarMonth => "calendar month",
        SlaWindow::BillingPeriod => "billing period",
    };
    let mut out = format!(
        "The provider aims for {} % availability per {window}",
        sla.availability.normalize()
    );
    if let Some(l) = &sla.latency {
        let _ = write!(
            out,
            ", with {} % of responses within {} ms",
            l.percentile,
            group_digits(u64::from(l.ms))
        );
    }
    out.push_str(".\n");
    if sla.credits.is_empty() {
        out.push_str("No service credits are given.\n\n");
        return out;
    }
    let mut credits: Vec<&Credit> = sla.credits.iter().collect();
    credits.sort_by_key(|c| std::cmp::Reverse(c.below));
    out.push_str(
        "If measured availability falls short, you get a credit on that period's fees:\n\n",
    );
    for c in credits {
        let _ = writeln!(
            out,
            "- below {} %: {} %",
            c.below.normalize(),
            c.credit.normalize()
        );
    }
    out.push('\n');
    out
}

// ------------------------------------------------------------------------------ prices

/// An inline price book in words: the period, the fixed terms as a list, then each usage
/// charge with its meter and, for tiered models, a table of tiers.
fn price_book_text(b: &PriceBook) -> String {
    let cur = b.currency.as_str();
    let minor = tollgate_billing::minor_units(cur).unwrap_or(2);
    let money = |d: Decimal| format!("{} {cur}", amount(d, minor));
    let period = match b.billing_cycle.interval {
        Interval::Month => "month",
        Interval::Quarter => "quarter",
        Interval::Year => "year",
    };
    let mut out = format!(
        "These prices are part of the terms: they cannot change without a new version. Price book {}, version {}; amounts in {cur}.\n\n",
        code(&b.id),
        code(&b.version)
    );
    let cycle = match (b.billing_cycle.anchor, b.billing_cycle.interval) {
        (Anchor::Calendar, Interval::Month) => "calendar months".to_owned(),
        (Anchor::Calendar, Interval::Quarter) => {
            "calendar quarters (from January, April, July and October 1st)".to_owned()
        }
        (Anchor::Calendar, Interval::Year) => "calendar years".to_owned(),
        (Anchor::Subscription, _) => {
            format!("{period}s counted from the moment your subscription started")
        }
    };
    let _ = writeln!(
        out,
        "- Billing period: {cycle}, {} time.",
        code(&b.billing_cycle.time_zone)
    );
    match &b.base_fee {
        Some(BaseFee { amount, timing }) => {
            let when = match timing {
                Timing::InAdvance => "in advance, at the start of the period it covers",
                Timing::InArrears => "in arrears, at the end of the period it covers",
            };
            let _ = writeln!(
                out,
                "- Base fee: {} per {period}, charged {when}.",
                money(*amount)
            );
        }
        None => out.push_str("- No base fee.\n"),
    }
    if let Some(m) = b.minimum_commitment {
        let _ = writeln!(
            out,
            "- Minimum commitment: {} per {period} for the base fee and usage together (before discounts and taxes); a shortfall is invoiced.",
            money(m)
        );
    }
    if b.trial_days > 0 {
        let _ = writeln!(
            out,
            "- Free trial: the first {} of your subscription (no base fee, no usage charges).",
            plural(u64::from(b.trial_days), "day")
        );
    }
    if b.grace_hours > 0 {
        let _ = writeln!(
            out,
            "- Late usage: events that arrive up to {} after a period ends still count for that period; its invoice is final only then.",
            plural(u64::from(b.grace_hours), "hour")
        );
    }
    let effect = |e: tollgate_billing::Effective| match e {
        tollgate_billing::Effective::Immediately => "at once (prorated to the second)",
        tollgate_billing::Effective::PeriodEnd => "at the end of the billing period",
    };
    let _ = writeln!(
        out,
        "- Plan changes: upgrades take effect {}, downgrades {}.",
        effect(b.plan_changes.upgrade),
        effect(b.plan_changes.downgrade)
    );
    let rounding = serde_json::to_value(b.rounding)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "- Rounding: each invoice line is rounded once, to {} ({rounding}).",
        plural(u64::from(minor), "decimal place")
    );
    if b.charges.is_empty() {
        out.push_str("- Usage is not charged.\n\n");
        return out;
    }
    out.push_str("\n### Usage charges\n\n");
    for c in &b.charges {
        out.push_str(&charge_text(b, c, minor));
    }
    out
}

fn charge_text(b: &PriceBook, c: &Charge, minor: u32) -> String {
    let cur = b.currency.as_str();
    let money = |d: Decimal| format!("{} {cur}", amount(d, minor));
    let name = match &c.description {
        Some(d) => format!("**{}** ({})", escape(d), code(&c.id)),
        None => format!("**{}**", code(&c.id)),
    };
    let measured = b
        .meters
        .iter()
        .find(|m| m.id == c.meter)
        .map(meter_words)
        .unwrap_or_default();
    let mut out = format!("{name}: {measured} (meter {}). Price: ", code(&c.meter));
    let mut table = String::new();
    match &c.price {
        PriceModel::PerUnit { unit_price } => {
            let _ = write!(out, "{} per unit", money(*unit_price));
        }
        PriceModel::Package {
            package_size,
            package_price,
        } => {
            let _ = write!(
                out,
                "{} per package of {} units; a started package is charged in full",
                money(*package_price),
                quantity(*package_size)
            );
        }
        PriceModel::Graduated { tiers } => {
            out.push_str("graduated, each unit priced at the rate of the tier it falls in");
            if tiers.iter().any(|t| t.flat_fee.is_some()) {
                out.push_str(
                    ", and a tier's flat fee is charged once when the quantity reaches it",
                );
            }
            table = unit_tiers(tiers, cur, minor);
        }
        PriceModel::Volume { tiers } => {
            out.push_str(
                "by volume, every unit priced at the rate of the tier the period's whole quantity falls in",
            );
            if tiers.iter().any(|t| t.flat_fee.is_some()) {
                out.push_str(", plus that tier's flat fee");
            }
            table = unit_tiers(tiers, cur, minor);
        }
        PriceModel::Percentage {
            percent,
            fixed_fee,
            min_fee,
            max_fee,
            free_events,
            free_amount,
        } => {
            let _ = write!(out, "{} % of each event's amount", percent.normalize());
            if let Some(f) = fixed_fee.filter(|f| !f.is_zero()) {
                let _ = write!(out, " plus {}", money(f));
            }
            let bounds: Vec<String> = [
                min_fee.map(|m| format!("at least {}", money(m))),
                max_fee.map(|m| format!("at most {}", money(m))),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !bounds.is_empty() {
                let _ = write!(out, ", {} per event", join_words(&bounds));
            }
            match (free_events, free_amount) {
                (Some(n), None) => {
                    let _ = write!(
                        out,
                        "; the first {} of each billing period are free",
                        plural(*n, "event")
                    );
                }
                (None, Some(a)) => {
                    let _ = write!(
                        out,
                        "; the first {} of amount in each billing period is free",
                        money(*a)
                    );
                }
                (Some(n), Some(a)) => {
                    let _ = write!(
                        out,
                        "; each billing period's first events are free until {} or {} of amount are covered, whichever comes first",
                        plural(*n, "event"),
                        money(*a)
                    );
                }
                (None, None) => {}
            }
        }
        PriceModel::GraduatedPercentage { tiers } => {
            out.push_str(
                "a percentage of the period's cumulative amount, at the rate of the tier each part of it falls in",
            );
            if tiers.iter().any(|t| t.flat_fee.is_some()) {
                out.push_str(
                    ", and a tier's flat fee is charged once when the cumulative amount first enters it",
                );
            }
            table = percent_tiers(tiers, cur, minor);
        }
    }
    if let Some(free) = c.free_units.filter(|f| !f.is_zero()) {
        let _ = write!(
            out,
            "; the first {} units of each billing period are free",
            quantity(free)
        );
    }
    out.push_str(".\n\n");
    out.push_str(&table);
    out
}

/// "the number of usage events of operation `a` with status 2xx" and the like.
fn meter_words(m: &Meter) -> String {
    let field = code(m.field.as_deref().unwrap_or(""));
    let what = match m.aggregate {
        Aggregate::Count => "the number of usage events".to_owned(),
        Aggregate::Sum => format!("the sum of {field} over usage events"),
        Aggregate::Max => format!("the largest {field} of usage events"),
        Aggregate::UniqueCount => format!("the number of distinct {field} values of usage events"),
    };
    let f = &m.filter;
    let mut conditions = Vec::new();
    if !f.operations.is_empty() {
        let ops: Vec<String> = f.operations.iter().map(|o| code(o)).collect();
        conditions.push(format!(
            "of operation{} {}",
            if ops.len() > 1 { "s" } else { "" },
            join_words(&ops)
        ));
    }
    if !f.status.is_empty() {
        let classes: Vec<String> = f
            .status
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        conditions.push(format!("with status {}", join_or(&classes)));
    }
    if !f.methods.is_empty() {
        let methods: Vec<String> = f.methods.iter().map(|m| code(m)).collect();
        conditions.push(format!("with method {}", join_or(&methods)));
    }
    for (k, v) in &f.equals {
        conditions.push(format!("where {} is {}", code(k), code(&v.to_string())));
    }
    let mut out = what;
    for c in conditions {
        out.push(' ');
        out.push_str(&c);
    }
    out
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The quantity range of each tier, in words: "up to 10 000", "over 10 000 up to 50 000",
/// "over 50 000".
fn tier_ranges(bounds: &[Option<Decimal>]) -> Vec<String> {
    let mut prev: Option<Decimal> = None;
    bounds
        .iter()
        .map(|b| {
            let words = match (prev, b) {
                (None, Some(to)) => format!("up to {}", quantity(*to)),
                (Some(from), Some(to)) => {
                    format!("over {} up to {}", quantity(from), quantity(*to))
                }
                (Some(from), None) => format!("over {}", quantity(from)),
                (None, None) => "any".to_owned(),
            };
            prev = *b;
            words
        })
        .collect()
}

fn unit_tiers(tiers: &[Tier], cur: &str, minor: u32) -> String {
    let fees = tiers.iter().any(|t| t.flat_fee.is_some());
    let ranges = tier_ranges(&tiers.iter().map(|t| t.up_to).collect::<Vec<_>>());
    let mut out = tier_header(&format!("| Units | Price per unit ({cur}) |"), fees, cur);
    for (t, range) in tiers.iter().zip(ranges) {
        let _ = write!(out, "| {range} | {} |", amount(t.unit_price, minor));
        if fees {
            let fee = t.flat_fee.map(|f| amount(f, minor)).unwrap_or_default();
            let _ = write!(out, " {fee} |");
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

fn percent_tiers(tiers: &[PercentTier], cur: &str, minor: u32) -> String {
    let fees = tiers.iter().any(|t| t.flat_fee.is_some());
    let ranges = tier_ranges(&tiers.iter().map(|t| t.up_to).collect::<Vec<_>>());
    let mut out = tier_header(
        &format!("| Cumulative amount ({cur}) | Percent |"),
        fees,
        cur,
    );
    for (t, range) in tiers.iter().zip(ranges) {
        let _ = write!(out, "| {range} | {} % |", t.percent.normalize());
        if fees {
            let fee = t.flat_fee.map(|f| amount(f, minor)).unwrap_or_default();
            let _ = write!(out, " {fee} |");
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

/// A tier table's header: the given columns, a flat fee column when a tier has a fee.
fn tier_header(columns: &str, fees: bool, cur: &str) -> String {
    if fees {
        format!("{columns} Flat fee ({cur}) |\n|---|--:|--:|\n")
    } else {
        format!("{columns}\n|---|--:|\n")
    }
}

/// A quantity without trailing zeros, its whole part grouped: `10000` → `10 000`.
fn quantity(d: Decimal) -> String {
    group_decimal(&d.normalize().to_string())
}

/// An amount of money with at least the currency's minor units: `1200` → `1 200.00`,
/// `0.015` → `0.015`.
fn amount(d: Decimal, minor: u32) -> String {
    let mut d = d.normalize();
    if d.scale() < minor {
        d.rescale(minor);
    }
    group_decimal(&d.to_string())
}

fn group_decimal(s: &str) -> String {
    let (sign, s) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (whole, frac) = s.split_once('.').map_or((s, None), |(w, f)| (w, Some(f)));
    let grouped = whole
        .parse::<u64>()
        .map(group_digits)
        .unwrap_or_else(|_| whole.to_owned());
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}
