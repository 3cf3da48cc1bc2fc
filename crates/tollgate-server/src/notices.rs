//! Notices of new term sheet versions. When a plan starts offering another version, every
//! open subscription not on it gets a notice whose period is the `notice.days` of the
//! version it accepted; until then it is served under what it accepted. When the period
//! ends, housekeeping applies that version's `notice.on_expiry`: move to the new version
//! or suspend. Accepting the new version (or cancelling) closes the notice.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ops::{Change, audit};
use crate::state::AppState;
use tollgate_core::NoticeId;
use tollgate_core::model::*;
use tollgate_store::{Scope, SubscriptionFilter, Tx};

/// Notice period and expiry rule for subscriptions that never accepted terms (they
/// subscribed before the plan had any): 30 days, then suspension.
const DEFAULT_DAYS: u32 = 30;

/// Announces `to` to every open subscription of `plan` not already on it.
pub async fn announce(
    state: &AppState,
    tx: &mut Tx,
    caller: &Caller,
    plan: &Plan,
    to: &TermSheet,
) -> Result<usize, ApiError> {
    let now = state.now();
    let mut after = None;
    let mut count = 0;
    let mut rules: std::collections::HashMap<String, (u32, NoticeExpiry)> =
        std::collections::HashMap::new();
    loop {
        let page = tx
            .list_subscriptions(
                &Scope::All,
                &SubscriptionFilter {
                    plan_id: Some(plan.id),
                    ..Default::default()
                },
                &tollgate_store::PageParams {
                    after: after.clone(),
                    limit: 200,
                },
            )
            .await?;
        for sub in &page.items {
            if sub.state == SubscriptionState::Cancelled
                || sub.terms_sha256.as_deref() == Some(to.sha256.as_str())
            {
                continue;
            }
            // The notice period is the one the subscriber agreed to; most subscribers are
            // on the same few versions, so each sheet is read and parsed once.
            let (days, on_expiry) = match &sub.terms_sha256 {
                Some(sha) => match rules.get(sha) {
                    Some(rule) => *rule,
                    None => {
                        let rule = notice_rule(tx, plan.org_id, sha).await?;
                        rules.insert(sha.clone(), rule);
                        rule
                    }
                },
                None => (DEFAULT_DAYS, NoticeExpiry::Suspend),
            };
            for open in tx.open_notices(sub.id).await? {
                tx.resolve_notice(open.id, now, NoticeResolution::Superseded)
                    .await?;
            }
            let notice = Notice {
                id: NoticeId::new(),
                subscription_id: sub.id,
                consumer_org_id: sub.consumer_org_id,
                provider_org_id: sub.provider_org_id,
                plan_id: plan.id,
                from_sha256: sub.terms_sha256.clone(),
                to_terms_id: to.id,
                to_sha256: to.sha256.clone(),
                on_expiry,
                created_at: now,
                ends_at: now + time::Duration::days(i64::from(days)),
                resolved_at: None,
                resolution: None,
            };
            tx.insert_notice(&notice).await?;
            audit(
                state,
                tx,
                caller,
                Change {
                    action: "notice.create",
                    target_type: "notice",
                    target_id: notice.id.to_string(),
                    org_id: Some(sub.consumer_org_id),
                    before: None,
                    after: Some(&notice),
                },
            )
            .await?;
            count += 1;
        }
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return Ok(count),
        }
    }
}

/// The notice period and expiry rule of the sheet with hash `sha` of `org` (the default
/// when the sheet is unknown here).
async fn notice_rule(
    tx: &mut Tx,
    org: tollgate_core::OrgId,
    sha: &str,
) -> Result<(u32, NoticeExpiry), ApiError> {
    let Some(old) = tx.get_terms_by_hash(org, sha).await? else {
        return Ok((DEFAULT_DAYS, NoticeExpiry::Suspend));
    };
    let v = crate::routes::terms::revalidate(&old)?;
    let n = &v.sheet().notice;
    let rule = match n.on_expiry {
        tollgate_terms::model::OnExpiry::Move => NoticeExpiry::Move,
        tollgate_terms::model::OnExpiry::Suspend => NoticeExpiry::Suspend,
    };
    Ok((n.days, rule))
}

/// Closes the open notices of `sub`: `Accepted` for those asking for `accepted_sha`,
/// `how` for the rest.
pub async fn close(
    tx: &mut Tx,
    sub: &Subscription,
    accepted_sha: Option<&str>,
    how: NoticeResolution,
    at: time::OffsetDateTime,
) -> Result<(), ApiError> {
    for n in tx.open_notices(sub.id).await? {
        let r = if Some(n.to_sha256.as_str()) == accepted_sha {
            NoticeResolution::Accepted
        } else {
            how
        };
        tx.resolve_notice(n.id, at, r).await?;
    }
    Ok(())
}

/// Applies every notice whose period has ended. Runs as the operator (the actor of
/// automatic changes in the audit log), with request id `job:notices`.
pub async fn apply_due(state: &AppState) -> Result<usize, ApiError> {
    let now = state.now();
    let system = Caller {
        user: state.operator.clone(),
        token_id: None,
        orgs: Default::default(),
        request_id: "job:notices".into(),
    };
    let mut tx = state.store.write().await?;
    let due = tx.due_notices(now, 500).await?;
    let mut applied = 0;
    for n in &due {
        let Some(before) = tx.get_subscription(n.subscription_id).await? else {
            continue;
        };
        if before.state == SubscriptionState::Cancelled {
            tx.resolve_notice(n.id, now, NoticeResolution::Cancelled)
                .await?;
            continue;
        }
        let mut sub = before.clone();
        let resolution = match n.on_expiry {
            NoticeExpiry::Move => {
                sub.terms_sha256 = Some(n.to_sha256.clone());
                NoticeResolution::Moved
            }
            NoticeExpiry::Suspend => {
                if sub.state == SubscriptionState::Active {
                    sub.history.push(SubscriptionTransition {
                        from: Some(sub.state),
                        to: SubscriptionState::Suspended,
                        actor: state.operator.id,
                        reason: format!(
                            "the notice period for terms {} ended without acceptance",
                            n.to_sha256
                        ),
                        at: now,
                    });
                    sub.state = SubscriptionState::Suspended;
                }
                NoticeResolution::Suspended
            }
        };
        if sub != before {
            sub.revision += 1;
            sub.updated_at = now;
            tx.update_subscription(&sub, before.revision, before.history.len())
                .await?;
            audit(
                state,
                &mut tx,
                &system,
                Change {
                    action: "subscription.notice_expired",
                    target_type: "subscription",
                    target_id: sub.id.to_string(),
                    org_id: Some(sub.consumer_org_id),
                    before: Some(&before),
                    after: Some(&sub),
                },
            )
            .await?;
        }
        tx.resolve_notice(n.id, now, resolution).await?;
        applied += 1;
    }
    tx.commit().await?;
    if applied > 0 {
        crate::snapshot::refresh(state).await?;
        tracing::info!(applied, "term sheet notices applied");
    }
    Ok(applied)
}
