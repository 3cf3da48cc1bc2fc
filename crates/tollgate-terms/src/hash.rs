//! The canonical form of a validated sheet and its hash: the sheet's identity, which
//! acceptance records, usage events and invoices cite.
//!
//! **Encoding `tollgate_terms` v1.** The hash is the lowercase hex SHA-256 of the RFC 8785
//! (JCS) canonical JSON of
//!
//! ```json
//! {"tollgate_terms": 1, "sheet": <the normalised sheet>}
//! ```
//!
//! where the normalised sheet is the `TermSheet` serialisation (field names as in files)
//! after these rules, so that the same terms written in YAML, TOML or JSON, in any key
//! order, with any white space, hash alike:
//!
//! - `$schema` is dropped (it is editor metadata, not terms);
//! - decimals (`sla.availability`, credits) are strings without trailing zeros
//!   (`"99.90"` → `"99.9"`); dates are `YYYY-MM-DD`, times `HH:MM`, operations
//!   `operationId` or `METHOD /path` with the method upper case;
//! - defaults are written out: `burst` = `requests`; `sensitivity` = the least level
//!   the categories allow; `consent_required` = whether sensitivity is `sensitive`;
//!   `limits.time_zone` = `UTC`; a blackout's `to` = its `from`; `sla.window` =
//!   `calendar_month` — so omitting a default and writing it give the same hash;
//! - lists that are sets are sorted: a grant's operations, scopes and categories;
//!   grants (by API, then first operation); purposes; regions; rate limits and quotas
//!   (by group, then period); window days, windows (by from, to, days); blackouts (by
//!   from); credits (by threshold, highest first). Section order is kept: it is the
//!   order of the text;
//! - section bodies have `\n` line endings and no trailing white space;
//! - absent optional fields are left out (never `null`); empty lists are written `[]`;
//! - an inline pricing block is the price book as tollgate-billing writes it — the very
//!   form `PriceBook::sha256` hashes: decimals as strings without trailing zeros, the
//!   book's defaults written out (`rounding`, `billing_cycle`, `trial_days`, …), empty
//!   filter lists left out. (Before the price book format landed, the block was
//!   free-form and kept as given: such a block no longer validates, and one that already
//!   was a price book now hashes in this form.)
//!
//! Any other difference — a text, a number, an added clause — changes the hash.
//! Changing any rule above is a new encoding version (`"tollgate_terms": 2`), never a
//! silent change: hashes already cited must stay reproducible.

use crate::model::TermSheet;
use serde_json::{Value, json};

/// The version of the canonical encoding.
pub const ENCODING_VERSION: u32 = 1;

/// The canonical value of a sheet whose defaults are already resolved.
pub(crate) fn canonical(resolved: &TermSheet) -> Value {
    let mut s = resolved.clone();
    s.schema = None;
    for g in &mut s.grants {
        g.operations.sort();
        g.scopes.sort();
        g.data.categories.sort();
    }
    s.grants
        .sort_by(|a, b| (&a.api, a.operations.first()).cmp(&(&b.api, b.operations.first())));
    s.data.purposes.sort();
    if let Some(r) = &mut s.data.regions {
        r.sort();
    }
    s.limits
        .rate
        .sort_by(|a, b| (&a.group, a.per).cmp(&(&b.group, b.per)));
    s.limits
        .quota
        .sort_by(|a, b| (&a.group, a.per).cmp(&(&b.group, b.per)));
    if let Some(w) = &mut s.windows {
        for win in &mut w.allowed {
            win.days.sort();
        }
        w.allowed
            .sort_by(|a, b| (a.from, a.to, &a.days).cmp(&(b.from, b.to, &b.days)));
        w.blackout.sort_by_key(|b| b.from);
    }
    if let Some(sla) = &mut s.sla {
        sla.credits.sort_by_key(|c| std::cmp::Reverse(c.below));
    }
    // Serialising our own model to JSON cannot fail: every map key is a string.
    let sheet = serde_json::to_value(&s).unwrap_or(Value::Null);
    json!({ "tollgate_terms": ENCODING_VERSION, "sheet": sheet })
}
