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
use std::fmt::Write;

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
        Some(Pricing::Inline(p)) => {
            let json = serde_json::to_string_pretty(p).unwrap_or_default();
            let _ = writeln!(
                out,
                "Prices, as part of these terms (they cannot change without a new version):\n\n~~~json\n{}\n~~~\n",
                json.replace("~~~", "~ ~ ~")
            );
        }
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
