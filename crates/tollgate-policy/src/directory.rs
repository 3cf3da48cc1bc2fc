//! The entity data of one snapshot: organizations, plans, subscriptions and applications
//! as Cedar entities, built once per snapshot and shared by every request.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entities, Entity, EntityUid, RestrictedExpression};

use crate::error::PolicyError;
use crate::schema::{Kind, schema, uid};

/// One subscription as the snapshot knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFacts {
    pub subscription_id: String,
    pub app_id: String,
    pub org_id: String,
    /// `<plan_id>@<sheet_sha256>` of the plan version the subscription accepted.
    pub plan_key: String,
    pub active: bool,
}

/// All subscriptions of a snapshot as Cedar entities, plus an index from application and
/// plan key to the subscription a request runs under.
///
/// Cedar looks entities up by id, so one `Entities` for the whole snapshot costs a
/// request nothing more than a per-request slice would, and saves building one (with its
/// transitive closure) per call.
#[derive(Debug, Clone)]
pub struct Directory {
    pub(crate) entities: Entities,
    /// app id → (principal uid, [(plan key, subscription uid, active)]).
    apps: HashMap<String, AppEntry>,
    /// Stands for "no subscription": an id no entity has.
    pub(crate) no_subscription: EntityUid,
}

#[derive(Debug, Clone)]
struct AppEntry {
    uid: EntityUid,
    subs: Vec<(String, EntityUid, bool)>,
}

impl Directory {
    /// Builds the entities (validated against the schema) and the index.
    pub fn new(subscriptions: &[SubscriptionFacts]) -> Result<Self, PolicyError> {
        let err = |message: String| PolicyError::Directory { message };
        let mut orgs = HashSet::new();
        let mut plans = HashSet::new();
        let mut app_parents: HashMap<&str, HashSet<EntityUid>> = HashMap::new();
        let mut app_org: HashMap<&str, &str> = HashMap::new();
        let mut apps: HashMap<String, AppEntry> = HashMap::new();
        let mut entities = Vec::with_capacity(subscriptions.len() * 2);
        let mut seen = HashSet::new();
        for s in subscriptions {
            if !seen.insert(s.subscription_id.as_str()) {
                return Err(err(format!(
                    "duplicate subscription {:?}",
                    s.subscription_id
                )));
            }
            let sub = uid(Kind::Subscription, &s.subscription_id);
            let plan = uid(Kind::Plan, &s.plan_key);
            let org = uid(Kind::Org, &s.org_id);
            let attrs = HashMap::from([(
                "active".to_owned(),
                RestrictedExpression::new_bool(s.active),
            )]);
            entities.push(
                Entity::new(sub.clone(), attrs, HashSet::from([plan.clone()]))
                    .map_err(|e| err(format!("subscription {:?}: {e}", s.subscription_id)))?,
            );
            if *app_org.entry(&s.app_id).or_insert(&s.org_id) != s.org_id.as_str() {
                return Err(err(format!(
                    "application {:?} belongs to more than one org",
                    s.app_id
                )));
            }
            plans.insert(plan);
            orgs.insert(org.clone());
            let parents = app_parents.entry(&s.app_id).or_default();
            parents.insert(org);
            parents.insert(sub.clone());
            apps.entry(s.app_id.clone())
                .or_insert_with(|| AppEntry {
                    uid: uid(Kind::Application, &s.app_id),
                    subs: Vec::new(),
                })
                .subs
                .push((s.plan_key.clone(), sub, s.active));
        }
        for (app, parents) in app_parents {
            entities.push(Entity::new_no_attrs(uid(Kind::Application, app), parents));
        }
        entities.extend(
            orgs.into_iter()
                .map(|o| Entity::new_no_attrs(o, HashSet::new())),
        );
        entities.extend(
            plans
                .into_iter()
                .map(|p| Entity::new_no_attrs(p, HashSet::new())),
        );
        let entities =
            Entities::from_entities(entities, Some(schema())).map_err(|e| err(format!("{e}")))?;
        Ok(Self {
            entities,
            apps,
            no_subscription: uid(Kind::Subscription, ""),
        })
    }

    /// The Cedar entities (for running the stock authorizer, e.g. in tests).
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// The principal uid of an application and the subscription a request of it under
    /// `plan_key` runs under: the active one if there are several, else any, else
    /// [`Directory::no_subscription`].
    pub fn resolve(&self, app_id: &str, plan_key: &str) -> (EntityUid, &EntityUid) {
        match self.apps.get(app_id) {
            Some(entry) => {
                let mut found = None;
                for (plan, sub, active) in &entry.subs {
                    if plan == plan_key {
                        found = Some(sub);
                        if *active {
                            break;
                        }
                    }
                }
                (entry.uid.clone(), found.unwrap_or(&self.no_subscription))
            }
            None => (uid(Kind::Application, app_id), &self.no_subscription),
        }
    }

    /// `Subscription::""`, which no entity has: the request's subscription when the
    /// application has none under the plan (the `subscription` forbid then denies).
    pub fn no_subscription(&self) -> &EntityUid {
        &self.no_subscription
    }
}
