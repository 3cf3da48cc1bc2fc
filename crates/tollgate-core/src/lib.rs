//! Tollgate's domain vocabulary: typed ids, the catalog and tenancy objects, roles and
//! what they permit, the table of problem codes shared by every HTTP surface, and the
//! `Clock` through which time enters. This crate does no IO and reads no clock.

pub mod apikey;
pub mod clock;
pub mod hash;
pub mod ids;
pub mod locate;
pub mod model;
pub mod path_template;
pub mod problem;
pub mod roles;
pub mod usage;
pub mod validate;

pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::*;
pub use problem::ErrorCode;
pub use validate::{FieldError, FieldErrors};
