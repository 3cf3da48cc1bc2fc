//! Admin API tests through the real router (no socket), on SQLite and PostgreSQL.

mod behaviour;
mod harness;
mod isolation;
mod terms;
