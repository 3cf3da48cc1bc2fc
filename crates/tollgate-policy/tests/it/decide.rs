//! Decisions with an injected clock: time windows in other zones and across DST changes,
//! blackout dates, regions and the operator embargo, scopes, consent, purpose and
//! subscription state — each denial with the policy id that caused it.

use jiff::Timestamp;
use tollgate_policy::{CompiledPlan, Decision, NOT_GRANTED, decide};

use crate::fixtures::{BATCH, Facts, HEALTH, WEATHER, directory, plans};

fn plan(key: &str) -> CompiledPlan {
    plans().into_iter().find(|p| p.key() == key).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// `expected`: `Ok(permit ids)` for allow, `Err(reasons)` for deny (suffixes after
/// `<key>/`, or full ids containing a `/` before any `@`-less name such as `operator/…`).
fn check(key: &str, facts: &Facts, now: &str, expected: Result<&[&str], &[&str]>) {
    let p = plan(key);
    let got = decide(&p, &directory(), &facts.facts(), ts(now));
    let full = |ids: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ids
            .iter()
            .map(|id| {
                if id.starts_with("operator/") || *id == NOT_GRANTED {
                    (*id).to_owned()
                } else {
                    format!("{key}/{id}")
                }
            })
            .collect();
        v.sort();
        v
    };
    let want = match expected {
        Ok(ids) => Decision {
            allow: true,
            reasons: full(ids),
            errors: vec![],
        },
        Err(ids) => Decision {
            allow: false,
            reasons: full(ids),
            errors: vec![],
        },
    };
    assert_eq!(got, want, "{key} {facts:?} at {now}");
}

fn weather() -> Facts {
    Facts::new("alpha", "weather", "getForecast").scopes(&["weather:read"])
}

#[test]
fn business_hours_are_local_to_the_plan_zone() {
    // Monday 2 November 2026: Paris is UTC+1.
    check(WEATHER, &weather(), "2026-11-02T07:30:00Z", Ok(&["grant"])); // 08:30 Paris
    check(
        WEATHER,
        &weather(),
        "2026-11-02T06:59:00Z",
        Err(&["window"]),
    ); // 07:59 Paris
    // 17:30 UTC is inside 08–18 in UTC, but 18:30 in Paris.
    check(
        WEATHER,
        &weather(),
        "2026-11-02T17:30:00Z",
        Err(&["window"]),
    );
    check(WEATHER, &weather(), "2026-11-02T16:59:59Z", Ok(&["grant"])); // 17:59 Paris
    // Saturday.
    check(
        WEATHER,
        &weather(),
        "2026-11-07T10:00:00Z",
        Err(&["window"]),
    );
    // Friday 23:30 UTC is already Saturday in Paris.
    check(
        WEATHER,
        &weather(),
        "2026-11-06T23:30:00Z",
        Err(&["window"]),
    );
}

#[test]
fn spring_forward_in_paris() {
    // Europe switches to summer time on Sunday 29 March 2026 at 01:00 UTC.
    // Friday before: 06:30 UTC = 07:30 CET → closed.
    check(
        WEATHER,
        &weather(),
        "2026-03-27T06:30:00Z",
        Err(&["window"]),
    );
    // Monday after: 06:30 UTC = 08:30 CEST → open.
    check(WEATHER, &weather(), "2026-03-30T06:30:00Z", Ok(&["grant"]));
    // Closing time moves an hour earlier in UTC: 16:30 UTC is 18:30 CEST.
    check(
        WEATHER,
        &weather(),
        "2026-03-30T16:30:00Z",
        Err(&["window"]),
    );
    check(WEATHER, &weather(), "2026-03-27T16:30:00Z", Ok(&["grant"])); // 17:30 CET
}

#[test]
fn fall_back_in_paris() {
    // Back to winter time on Sunday 25 October 2026 at 01:00 UTC.
    check(WEATHER, &weather(), "2026-10-23T06:30:00Z", Ok(&["grant"])); // Fri 08:30 CEST
    check(
        WEATHER,
        &weather(),
        "2026-10-26T06:30:00Z",
        Err(&["window"]),
    ); // Mon 07:30 CET
    check(WEATHER, &weather(), "2026-10-26T07:00:00Z", Ok(&["grant"])); // Mon 08:00 CET
}

#[test]
fn overnight_window_in_new_york_across_dst() {
    let batch = Facts::new("beta", "batch", "submitJob").region(Some("us-east"));
    // Monday 2 Nov 2026, after US fall-back (EST, UTC−5).
    check(BATCH, &batch, "2026-11-03T04:00:00Z", Ok(&["grant"])); // Mon 23:00
    check(BATCH, &batch, "2026-11-03T10:30:00Z", Ok(&["grant"])); // Tue 05:30
    check(BATCH, &batch, "2026-11-03T11:30:00Z", Err(&["window"])); // Tue 06:30
    check(BATCH, &batch, "2026-11-07T10:00:00Z", Ok(&["grant"])); // Sat 05:00, Friday night
    check(BATCH, &batch, "2026-11-08T04:00:00Z", Err(&["window"])); // Sat 23:00
    check(BATCH, &batch, "2026-11-02T10:00:00Z", Err(&["window"])); // Mon 05:00, Sunday night
    // US spring-forward is Sunday 8 March 2026: Monday 9 March 05:30 EDT = 09:30 UTC.
    check(BATCH, &batch, "2026-03-09T09:30:00Z", Err(&["window"]));
    check(BATCH, &batch, "2026-03-10T09:30:00Z", Ok(&["grant"])); // Tue 05:30 EDT
    // The Friday before (EST): 10:30 UTC = 05:30, open; a week later (EDT) 06:30, closed.
    check(BATCH, &batch, "2026-03-06T10:30:00Z", Ok(&["grant"]));
    check(BATCH, &batch, "2026-03-13T10:30:00Z", Err(&["window"]));
}

#[test]
fn blackout_dates_are_local() {
    // Friday 25 December 2026, 11:00 Paris: inside hours, blackout.
    check(
        WEATHER,
        &weather(),
        "2026-12-25T10:00:00Z",
        Err(&["blackout"]),
    );
    check(WEATHER, &weather(), "2026-12-24T10:00:00Z", Ok(&["grant"]));
    // Outside hours and blackout at once: both reasons.
    check(
        WEATHER,
        &weather(),
        "2026-12-25T20:00:00Z",
        Err(&["blackout", "window"]),
    );
}

#[test]
fn regions_and_the_operator_embargo() {
    let now = "2026-11-02T09:00:00Z";
    check(
        WEATHER,
        &weather().region(Some("eu-central")),
        now,
        Ok(&["grant"]),
    );
    check(
        WEATHER,
        &weather().region(Some("us-east")),
        now,
        Err(&["region"]),
    );
    check(WEATHER, &weather().region(None), now, Err(&["region"]));
    check(
        WEATHER,
        &weather().region(Some("embargo-a")),
        now,
        Err(&["operator/embargo", "region"]),
    );
    // The batch plan allows any region, even none, but never an embargoed one.
    let batch = Facts::new("beta", "batch", "getJob");
    let night = "2026-11-03T04:00:00Z";
    check(BATCH, &batch.clone().region(None), night, Ok(&["grant"]));
    check(
        BATCH,
        &batch.clone().region(Some("embargo-b")),
        night,
        Err(&["operator/embargo"]),
    );
}

#[test]
fn scopes() {
    let now = "2026-11-02T09:00:00Z";
    let history = Facts::new("alpha", "weather", "getHistory");
    check(
        WEATHER,
        &history.clone().scopes(&["weather:read"]),
        now,
        Err(&["scope"]),
    );
    check(
        WEATHER,
        &history.clone().scopes(&["weather:read", "weather:history"]),
        now,
        Ok(&["grant"]),
    );
    check(WEATHER, &weather().scopes(&[]), now, Err(&["scope"]));
    check(
        WEATHER,
        &weather().scopes(&["weather:history"]),
        now,
        Err(&["scope"]),
    );
    // Not granted at all: no permit, no scope forbid.
    let other = Facts::new("alpha", "weather", "deleteStation").scopes(&["weather:read"]);
    check(WEATHER, &other, now, Err(&[NOT_GRANTED]));
    let other_api = Facts::new("alpha", "records", "getForecast").scopes(&["weather:read"]);
    check(WEATHER, &other_api, now, Err(&[NOT_GRANTED]));
}

#[test]
fn consent_and_purpose() {
    let now = "2026-11-02T09:00:00Z";
    let patient = Facts::new("alpha", "records", "getPatient")
        .scopes(&["records:read"])
        .purpose("treatment");
    check(HEALTH, &patient, now, Err(&["consent/contact+health"]));
    check(
        HEALTH,
        &patient.clone().consent(&["health"]),
        now,
        Err(&["consent/contact+health"]),
    );
    check(
        HEALTH,
        &patient.clone().consent(&["health", "contact"]),
        now,
        Ok(&["grant"]),
    );
    let labs = Facts::new("alpha", "records", "getLabResults")
        .scopes(&["records:read"])
        .purpose("research");
    check(
        HEALTH,
        &labs.clone().consent(&["contact", "health", "location"]),
        now,
        Ok(&["grant"]),
    );
    let lookup = Facts::new("alpha", "geo", "lookup").purpose("research");
    check(HEALTH, &lookup, now, Err(&["consent/location"]));
    check(
        HEALTH,
        &lookup.clone().consent(&["location"]),
        now,
        Ok(&["grant"]),
    );
    // Categorised but no consent needed.
    let list = Facts::new("alpha", "records", "listPatients")
        .scopes(&["records:read"])
        .purpose("treatment");
    check(HEALTH, &list, now, Ok(&["grant"]));
    // Purpose missing or not permitted.
    let mut no_purpose = list.clone();
    no_purpose.purpose = None;
    check(HEALTH, &no_purpose, now, Err(&["purpose"]));
    check(
        HEALTH,
        &list.clone().purpose("marketing"),
        now,
        Err(&["purpose"]),
    );
    // Several causes at once: all reasons.
    check(
        HEALTH,
        &Facts::new("alpha", "records", "getPatient").region(Some("us-east")),
        now,
        Err(&["consent/contact+health", "purpose", "region", "scope"]),
    );
}

#[test]
fn subscription_state() {
    let now = "2026-11-02T09:00:00Z";
    // beta's weather subscription is inactive.
    let beta = Facts::new("beta", "weather", "getForecast").scopes(&["weather:read"]);
    check(WEATHER, &beta, now, Err(&["subscription"]));
    // Unknown application.
    let nobody = Facts::new("nobody", "weather", "getForecast").scopes(&["weather:read"]);
    check(WEATHER, &nobody, now, Err(&["subscription"]));
    // delta has only an inactive batch subscription and none to weather.
    let delta = Facts::new("delta", "weather", "getForecast").scopes(&["weather:read"]);
    check(WEATHER, &delta, now, Err(&["subscription"]));
    // gamma has an inactive and an active subscription to the same plan: the active one counts.
    let gamma = Facts::new("gamma", "geo", "lookup")
        .purpose("research")
        .consent(&["location"]);
    check(HEALTH, &gamma, now, Ok(&["grant"]));
}
