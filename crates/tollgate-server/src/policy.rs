//! From a validated term sheet to its Cedar policy slice: maps the sheet's machine
//! clauses onto `tollgate-policy`'s input and compiles them. Publishing a sheet requires
//! this to succeed; the gateway will load the compiled slices into its snapshot.

use crate::error::ApiError;
use std::collections::BTreeMap;
use tollgate_core::ErrorCode;
use tollgate_core::model::TermSheet;
use tollgate_policy::{
    CompiledPlan, Grant, Hours, OperatorPolicies, PlanTerms, SensitiveOp, Window,
};
use tollgate_terms::ValidatedSheet;

/// The serde name of a vocabulary value (`financial`, `marketing`, …).
pub(crate) fn name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The policy input of a sheet. `key` names the slice (`<plan or sheet>@<sha256>`).
pub fn plan_terms(key: &str, v: &ValidatedSheet) -> PlanTerms {
    // One grant per (API, scope set): few policies per slice keeps Cedar fast.
    let mut grants: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
    let mut sensitive = Vec::new();
    for op in v.operations() {
        let id = op
            .operation_id
            .clone()
            .unwrap_or_else(|| op.operation.to_string());
        grants
            .entry((op.api.clone(), op.scopes.clone()))
            .or_default()
            .push(id.clone());
        if op.consent_required || !op.categories.is_empty() {
            sensitive.push(SensitiveOp {
                api: op.api.clone(),
                operation: id,
                categories: op.categories.iter().map(name).collect(),
                consent_required: op.consent_required,
            });
        }
    }
    let window = v.windows().map(|w| {
        let mut by_hours: BTreeMap<(u16, u16), Vec<jiff::civil::Weekday>> = BTreeMap::new();
        match &w.weekly {
            Some(days) => {
                for (i, ranges) in days.iter().enumerate() {
                    let day = weekday(i);
                    for &(from, to) in ranges {
                        by_hours.entry((from, to)).or_default().push(day);
                    }
                }
            }
            None => {
                by_hours.insert((0, 1440), (0..7).map(weekday).collect());
            }
        }
        let mut blackout = Vec::new();
        for &(from, to) in &w.blackouts {
            let mut d = from;
            // Bounded: a blackout range is at most a year of dates.
            while d <= to && blackout.len() < 4000 {
                blackout.push(d);
                match d.tomorrow() {
                    Ok(n) => d = n,
                    Err(_) => break,
                }
            }
        }
        Window {
            tz: w.zone_name.clone(),
            allow: by_hours
                .into_iter()
                .map(|((from_minute, to_minute), days)| Hours {
                    days,
                    from_minute,
                    to_minute,
                })
                .collect(),
            blackout,
        }
    });
    let purposes = if v.purposes().is_empty() {
        None
    } else {
        Some(v.purposes().iter().map(name).collect())
    };
    PlanTerms {
        key: key.to_owned(),
        grants: grants
            .into_iter()
            .map(|((api, scopes), operations)| Grant {
                api,
                operations,
                scopes,
            })
            .collect(),
        window,
        regions: v.regions().map(<[String]>::to_vec),
        sensitive,
        purposes,
    }
}

fn weekday(i: usize) -> jiff::civil::Weekday {
    use jiff::civil::Weekday::*;
    [
        Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday,
    ][i % 7]
}

/// Compiles a stored sheet; an error names the clause that does not compile.
pub fn compile(
    t: &TermSheet,
    v: &ValidatedSheet,
    operator: &OperatorPolicies,
) -> Result<CompiledPlan, ApiError> {
    let terms = plan_terms(&format!("{}@{}", t.sheet_id, t.sha256), v);
    tollgate_policy::compile(&terms, operator).map_err(|e| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            format!("the term sheet does not compile to policy: {e}"),
        )
    })
}
