//! Admin API tests through the real router (no socket), on SQLite and PostgreSQL.

mod behaviour;
mod billing;
mod gateway;
mod harness;
mod isolation;
mod terms;
mod webhooks;
