//! Tollgate's runtime authorization: the Cedar schema, plan terms compiled into small
//! Cedar policy slices (one per plan version), the snapshot's subscriptions as entity
//! data, and [`decide`], the pure function the gateway calls per request.
//!
//! The rules live in Cedar: [`decide`] only computes the request's context (local time in
//! the plan's zone, the subscription the call runs under) and runs the stock
//! [`cedar_policy::Authorizer`] — on the plan's policies partially evaluated at compile
//! time for the class of the request (`specialize`: every comparison of a request fact
//! with a literal folded, leaving Cedar the entity data), which decides exactly like the
//! plan's Cedar text. The crate is pure and synchronous: no IO, and `now` is always
//! passed in. [`decide_cached`] memoizes decisions in a bounded [`DecisionCache`] (exact
//! keys: snapshot generation, plan, facts, local minute).

mod cache;
mod compile;
mod decide;
mod directory;
mod error;
mod fold;
mod region;
mod schema;
mod specialize;
mod terms;

pub use cache::{CacheStats, DecisionCache, decide_cached};
pub use compile::{CompiledPlan, OperatorPolicies, compile};
pub use decide::{
    Decision, LocalTime, NOT_GRANTED, RequestFacts, cedar_request, decide, local_time,
};
pub use directory::{Directory, SubscriptionFacts};
pub use error::PolicyError;
pub use region::RegionTable;
pub use schema::{SCHEMA_TEXT, call_action, schema};
pub use terms::{Grant, Hours, PlanTerms, SensitiveOp, Window};
