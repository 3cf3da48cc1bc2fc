//! The rater: a subscription's usage events of one period, priced by the price book of
//! the term sheet each event was served under, plus base fees, prorations, the minimum
//! commitment, coupons, taxes and prepaid credit, into an invoice whose totals are sums
//! of its rounded lines.

use crate::Error;
use crate::currency::{RoundingMode, minor_units, round};
use crate::event::{CompiledMeter, UsageEvent};
use crate::invoice::{
    Cancellation, ChangeKind, CouponGrant, Discount, EventRange, Excluded, InvoiceLine,
    InvoiceStatus, LineKind, Proration, RatedInvoice, Subscription, TaxRate, WalletUse,
};
use crate::model::{Aggregate, Charge, Effective, PriceBook, PriceBookRef, PriceModel, Timing};
use crate::period::{Span, billing_period, prorate, trial_end};
use crate::pricing::{self, PercentageTerms, add, mul};
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The charge id of base fee lines (coupons and taxes name it in `applies_to`).
pub const BASE_CHARGE: &str = "base";

/// Everything one invoice is computed from. Nothing else is read: no clock, no store.
#[derive(Debug, Clone, Copy)]
pub struct RatingInput<'a> {
    /// The subscription and its plan history.
    pub subscription: &'a Subscription,
    /// Price books by the hash of the term sheet that carries them (DESIGN.md §1): every
    /// event is rated by the book of the term sheet it was served under.
    pub books: &'a BTreeMap<String, PriceBook>,
    /// The billing period rated (from [`billing_period`]).
    pub period: Span,
    /// The subscription's usage events of the period, in any order; events of earlier
    /// periods that missed their invoice are rated as late usage; events of other
    /// subscriptions or later periods are counted in [`Excluded`] and otherwise ignored.
    pub events: &'a [UsageEvent],
    /// Prepaid credit available, consumed before anything is due.
    pub wallet_balance: Decimal,
    /// Coupons on the subscription.
    pub coupons: &'a [CouponGrant],
    /// Tax rates of the customer's jurisdiction(s).
    pub taxes: &'a [TaxRate],
    /// The rating instant (decides only whether the invoice is still provisional).
    pub now: Timestamp,
}

/// SHA-256 (lowercase hex) over event ids, each followed by `\n`, in the order given:
/// the `ids_sha256` of an [`EventRange`] when given the ids in event time order, ties by
/// id.
pub fn event_ids_sha256<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// A validated book with what rating needs of it computed once.
pub(crate) struct BookCtx<'a> {
    pub(crate) book: &'a PriceBook,
    pub(crate) reference: PriceBookRef,
    pub(crate) minor: u32,
    meters: BTreeMap<&'a str, CompiledMeter>,
}

impl<'a> BookCtx<'a> {
    pub(crate) fn new(book: &'a PriceBook) -> Result<BookCtx<'a>, Error> {
        book.validate()
            .map_err(|problems| Error::InvalidPriceBook {
                id: book.id.clone(),
                problems,
            })?;
        let minor = minor_units(&book.currency)
            .ok_or_else(|| Error::UnknownCurrency(book.currency.clone()))?;
        Ok(BookCtx {
            book,
            reference: book.reference(),
            minor,
            meters: book
                .meters
                .iter()
                .map(|m| (m.id.as_str(), CompiledMeter::new(m)))
                .collect(),
        })
    }

    pub(crate) fn round(&self, amount: Decimal) -> Decimal {
        round(amount, self.minor, self.book.rounding)
    }
}

/// A base fee line of `ctx`'s book for `amount` (a whole period's fee, a prorated part
/// of one, or a negative credit), rounded once. Callers add the period and proration.
pub(crate) fn base_fee_line(ctx: &BookCtx<'_>, kind: LineKind, amount: Decimal) -> InvoiceLine {
    let what = match kind {
        LineKind::ProrationCredit => "Unused time of base fee",
        LineKind::ProrationCharge => "Prorated base fee",
        _ => "Base fee",
    };
    let mut line = InvoiceLine::new(
        kind,
        format!("{what} — {} {}", ctx.book.id, ctx.book.version),
    );
    line.price_book = Some(ctx.reference.clone());
    line.charge = Some(BASE_CHARGE.into());
    line.amount_unrounded = amount;
    line.amount = ctx.round(amount);
    line
}

/// The shortfall line up to a minimum commitment, `None` when `spend` reaches it.
/// `spend` is what the period's base fees (exact) and usage lines (rounded) came to.
pub(crate) fn shortfall_line(
    reference: &PriceBookRef,
    commitment: Decimal,
    spend: Decimal,
    minor: u32,
    mode: RoundingMode,
) -> Option<InvoiceLine> {
    if spend >= commitment {
        return None;
    }
    let amount = commitment - spend;
    let mut line = InvoiceLine::new(LineKind::Shortfall, "Minimum commitment shortfall".into());
    line.price_book = Some(reference.clone());
    line.base_amount = Some(spend);
    line.amount_unrounded = amount;
    line.amount = round(amount, minor, mode);
    Some(line)
}

/// Rates one usage charge of one price book over `events`: the line `rate` puts on the
/// invoice for these events (same events, same book, same line), so anyone can
/// recompute a line from the ledger entries it cites. `events` may be in any order and
/// may include events the charge's meter does not match. `None` when no event matches.
pub fn rate_usage_line(
    book: &PriceBook,
    term_sheet: &str,
    charge_id: &str,
    service_period: Span,
    events: &[UsageEvent],
) -> Result<Option<InvoiceLine>, Error> {
    let ctx = BookCtx::new(book)?;
    let charge = book
        .charges
        .iter()
        .find(|c| c.id == charge_id)
        .ok_or_else(|| Error::InvalidInput(format!("no charge {charge_id:?} in {}", book.id)))?;
    let mut sorted: Vec<&UsageEvent> = events.iter().collect();
    sort_events(&mut sorted);
    usage_line(&ctx, charge, term_sheet, service_period, false, &sorted)
}

/// Event time order, ties by id: the order free allowances are used in and event ids
/// are hashed in, so the result never depends on the order events were given in.
fn sort_events(events: &mut [&UsageEvent]) {
    events.sort_unstable_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
}

fn usage_line(
    ctx: &BookCtx<'_>,
    charge: &Charge,
    term_sheet: &str,
    service_period: Span,
    late: bool,
    events: &[&UsageEvent],
) -> Result<Option<InvoiceLine>, Error> {
    let meter = ctx
        .meters
        .get(charge.meter.as_str())
        .ok_or_else(|| Error::InvalidInput(format!("no meter {:?}", charge.meter)))?;
    let per_event = matches!(charge.price, PriceModel::Percentage { .. });
    let mut hasher = Sha256::new();
    let mut count: u64 = 0;
    let mut first = None;
    let mut last = None;
    let mut sum = Decimal::ZERO;
    let mut max: Option<Decimal> = None;
    let mut distinct = BTreeSet::new();
    let mut amounts = Vec::new();
    for e in events {
        let Some(v) = meter.measure(e) else { continue };
        count += 1;
        first.get_or_insert(e.time);
        last = Some(e.time);
        hasher.update(e.id.as_bytes());
        hasher.update(b"\n");
        match meter.aggregate {
            Aggregate::Count => {}
            Aggregate::Sum => {
                sum = add(sum, v)?;
                if per_event {
                    amounts.push(v);
                }
            }
            Aggregate::Max => max = Some(max.map_or(v, |m| m.max(v))),
            Aggregate::UniqueCount => {
                if let Some(value) = meter.field.as_ref().and_then(|f| f.value(e)) {
                    distinct.insert(value.to_string());
                }
            }
        }
    }
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    let quantity = match meter.aggregate {
        Aggregate::Count => Decimal::from(count),
        Aggregate::Sum => sum,
        Aggregate::Max => max.unwrap_or_default(),
        Aggregate::UniqueCount => Decimal::from(distinct.len()),
    };
    let mut line = price_charge(ctx, charge, quantity, &amounts)?;
    line.term_sheet = Some(term_sheet.to_string());
    line.service_period = Some(service_period);
    line.late = late;
    line.events = Some(EventRange {
        first,
        last,
        count,
        ids_sha256: hex::encode(hasher.finalize()),
    });
    Ok(Some(line))
}

/// Prices one usage charge for a measured quantity: the one pricing path of the crate.
/// [`rate`] and [`rate_usage_line`] call it with what they aggregated from events,
/// [`crate::quote`] with the quantities it is given, so a quote and an invoice price the
/// same usage the same way, down to the tier breakdown and the rounding.
///
/// `amounts` are the per-event transaction amounts in event order; only `percentage`
/// charges read them (every other model prices `quantity`). The line carries the book,
/// charge, meter, quantity, free units, unit price or tiers, percentage detail and the
/// amount rounded once; the caller adds what it knows of events and periods.
pub(crate) fn price_charge(
    ctx: &BookCtx<'_>,
    charge: &Charge,
    quantity: Decimal,
    amounts: &[Decimal],
) -> Result<InvoiceLine, Error> {
    let mut line = InvoiceLine::new(
        LineKind::Usage,
        charge
            .description
            .clone()
            .unwrap_or_else(|| charge.id.clone()),
    );
    line.price_book = Some(ctx.reference.clone());
    line.charge = Some(charge.id.clone());
    line.meter = Some(charge.meter.clone());
    line.quantity = Some(quantity);
    let free = charge.free_units.unwrap_or_default();
    let billable = (quantity - free).max(Decimal::ZERO);
    if charge.free_units.is_some() {
        line.free_units = Some(quantity.min(free).max(Decimal::ZERO));
    }
    let amount = match &charge.price {
        PriceModel::PerUnit { unit_price } => {
            line.unit_price = Some(*unit_price);
            pricing::per_unit(billable, *unit_price)?.amount
        }
        PriceModel::Package {
            package_size,
            package_price,
        } => {
            line.unit_price = Some(*package_price);
            pricing::package(billable, *package_size, *package_price)?.amount
        }
        PriceModel::Graduated { tiers } => {
            let p = pricing::graduated_tiers(billable, tiers)?;
            line.tiers = p.tiers;
            p.amount
        }
        PriceModel::Volume { tiers } => {
            let p = pricing::volume_tiers(billable, tiers)?;
            line.tiers = p.tiers;
            p.amount
        }
        PriceModel::Percentage {
            percent,
            fixed_fee,
            min_fee,
            max_fee,
            free_events,
            free_amount,
        } => {
            let terms = PercentageTerms {
                percent: *percent,
                fixed_fee: fixed_fee.unwrap_or_default(),
                min_fee: *min_fee,
                max_fee: *max_fee,
                free_events: *free_events,
                free_amount: *free_amount,
            };
            let o = pricing::percentage(amounts.iter().copied(), &terms)?;
            let amount = o.amount;
            line.percent = Some(*percent);
            line.percentage = Some(o);
            amount
        }
        PriceModel::GraduatedPercentage { tiers } => {
            let p = pricing::graduated_percentage(billable, tiers)?;
            line.tiers = p.tiers;
            p.amount
        }
    };
    line.amount_unrounded = amount;
    line.amount = ctx.round(amount);
    Ok(line)
}

/// The plan a subscription is on, as `(from, term sheet)` steps in time order.
fn timeline<'s>(
    sub: &'s Subscription,
    books: &BTreeMap<String, PriceBook>,
) -> Result<Vec<(Timestamp, &'s str)>, Error> {
    let mut steps: Vec<(Timestamp, &str)> = vec![(sub.started, sub.term_sheet.as_str())];
    let mut changes: Vec<_> = sub.changes.iter().collect();
    changes.sort_by_key(|c| c.at);
    for c in changes {
        let current = plan_at(&steps, c.at);
        let book = book_of(books, current, "plan change")?;
        let policy = match c.kind {
            ChangeKind::Upgrade => book.plan_changes.upgrade,
            ChangeKind::Downgrade => book.plan_changes.downgrade,
        };
        let effective = match policy {
            Effective::Immediately => c.at,
            Effective::PeriodEnd => billing_period(&book.billing_cycle, sub.started, c.at)?.end,
        };
        // A later change replaces changes still scheduled after it takes effect.
        steps.retain(|(from, _)| *from < effective);
        steps.push((effective, c.term_sheet.as_str()));
    }
    Ok(steps)
}

fn plan_at<'s>(steps: &[(Timestamp, &'s str)], t: Timestamp) -> &'s str {
    steps
        .iter()
        .rev()
        .find(|(from, _)| *from <= t)
        .unwrap_or(&steps[0])
        .1
}

fn book_of<'b>(
    books: &'b BTreeMap<String, PriceBook>,
    term_sheet: &str,
    what: &str,
) -> Result<&'b PriceBook, Error> {
    books
        .get(term_sheet)
        .ok_or_else(|| Error::UnknownTermSheet {
            event: what.to_string(),
            term_sheet: term_sheet.to_string(),
        })
}

/// When the subscription is served: from the end of the trial to the cancellation.
fn service_window(
    sub: &Subscription,
    books: &BTreeMap<String, PriceBook>,
    steps: &[(Timestamp, &str)],
) -> Result<Span, Error> {
    let first = book_of(books, &sub.term_sheet, "subscription start")?;
    let start = trial_end(&first.billing_cycle, sub.started, first.trial_days)?;
    let end = match sub.cancellation {
        None => Timestamp::MAX,
        Some(Cancellation {
            at,
            effective: Effective::Immediately,
        }) => at,
        Some(Cancellation {
            at,
            effective: Effective::PeriodEnd,
        }) => {
            let book = book_of(books, plan_at(steps, at), "cancellation")?;
            billing_period(&book.billing_cycle, sub.started, at)?.end
        }
    };
    Ok(Span::new(start, end))
}

/// `(span, term sheet)` pieces of `window` by plan.
fn segments<'s>(steps: &[(Timestamp, &'s str)], window: &Span) -> Vec<(Span, &'s str)> {
    let mut out = Vec::new();
    for (i, (from, ts)) in steps.iter().enumerate() {
        let to = steps.get(i + 1).map_or(Timestamp::MAX, |s| s.0);
        if let Some(s) = Span::new(*from, to).intersect(window) {
            out.push((s, *ts));
        }
    }
    out
}

/// Shared state of one rating.
struct Rater<'a> {
    books: &'a BTreeMap<String, PriceBook>,
    ctx: BTreeMap<&'a str, BookCtx<'a>>,
    currency: Option<String>,
}

impl<'a> Rater<'a> {
    fn new(books: &'a BTreeMap<String, PriceBook>) -> Rater<'a> {
        Rater {
            books,
            ctx: BTreeMap::new(),
            currency: None,
        }
    }

    /// The context of a term sheet's book, built (validated, hashed) once.
    fn ctx(&mut self, term_sheet: &'a str, event: &str) -> Result<&BookCtx<'a>, Error> {
        if !self.ctx.contains_key(term_sheet) {
            let (key, book) =
                self.books
                    .get_key_value(term_sheet)
                    .ok_or_else(|| Error::UnknownTermSheet {
                        event: event.to_string(),
                        term_sheet: term_sheet.to_string(),
                    })?;
            match &self.currency {
                None => self.currency = Some(book.currency.clone()),
                Some(c) if *c != book.currency => {
                    return Err(Error::CurrencyMismatch {
                        expected: c.clone(),
                        found: book.currency.clone(),
                    });
                }
                Some(_) => {}
            }
            self.ctx.insert(key.as_str(), BookCtx::new(book)?);
        }
        Ok(&self.ctx[term_sheet])
    }

    fn base_line(
        &mut self,
        kind: LineKind,
        term_sheet: &'a str,
        part: Span,
        whole: &Span,
        sign: Decimal,
    ) -> Result<Option<InvoiceLine>, Error> {
        let ctx = self.ctx(term_sheet, "base fee")?;
        let Some(fee) = &ctx.book.base_fee else {
            return Ok(None);
        };
        let amount = prorate(fee.amount, &part, whole)? * sign;
        let mut line = base_fee_line(ctx, kind, amount);
        line.term_sheet = Some(term_sheet.to_string());
        line.service_period = Some(part);
        if part.seconds() != whole.seconds() {
            line.proration = Some(Proration {
                seconds: part.seconds(),
                period_seconds: whole.seconds(),
                full_amount: fee.amount,
            });
        }
        Ok(Some(line))
    }
}

/// Rates one billing period of a subscription into an invoice.
///
/// Lines, in order:
/// - base fees: `in_arrears` fees of this period, prorated per plan segment; for
///   `in_advance` fees, a credit for the unused time of the fee charged in advance and
///   prorated charges for plans that started within the period (immediate upgrades,
///   downgrades by policy), then the advance fee of the next period (not when service
///   ends by then; the period in which service starts is charged by [`rate_opening`]);
/// - usage: one line per price book version (term sheet) and charge, late usage of
///   earlier periods on separate lines rated on its own;
/// - shortfall up to the minimum commitment (prorated by the time served);
/// - one discount line per active coupon; one tax line per rate; prepaid credit used.
///
/// Each line is rounded once: priced lines with their price book's rounding mode, the
/// others with the mode of the plan in effect at the end of the period.
pub fn rate(input: &RatingInput<'_>) -> Result<RatedInvoice, Error> {
    let sub = input.subscription;
    let period = Span::checked(input.period.start, input.period.end)?;
    let steps = timeline(sub, input.books)?;
    let service = service_window(sub, input.books, &steps)?;
    let mut r = Rater::new(input.books);
    let mut lines = Vec::new();

    // Base fees.
    let served = service.intersect(&period);
    let segs = served.map(|w| segments(&steps, &w)).unwrap_or_default();
    let mut base_cost = Decimal::ZERO;
    for (i, (seg, ts)) in segs.iter().enumerate() {
        let ctx = r.ctx(ts, "base fee")?;
        let Some(fee) = ctx.book.base_fee.clone() else {
            continue;
        };
        base_cost = add(base_cost, prorate(fee.amount, seg, &period)?)?;
        let line = match fee.timing {
            Timing::InArrears => r.base_line(LineKind::Base, ts, *seg, &period, Decimal::ONE)?,
            // The first segment's fee was charged in advance up to the period's end.
            Timing::InAdvance if i == 0 => None,
            Timing::InAdvance => {
                r.base_line(LineKind::ProrationCharge, ts, *seg, &period, Decimal::ONE)?
            }
        };
        lines.extend(line);
        if fee.timing == Timing::InAdvance && i == 0 && seg.end < period.end {
            let unused = Span::new(seg.end, period.end);
            lines.extend(r.base_line(
                LineKind::ProrationCredit,
                ts,
                unused,
                &period,
                Decimal::NEGATIVE_ONE,
            )?);
        }
    }
    // Base lines in time order; at the instant of a change the old plan's credit comes
    // before the new plan's charge, the order a reader checks them in.
    lines.sort_by_key(|l| {
        (
            l.service_period.map(|s| s.start),
            l.kind != LineKind::ProrationCredit,
        )
    });

    // The advance fee of the next period, for the plan in effect when it starts.
    let end_plan = plan_at(&steps, period.end);
    let end_book = book_of(input.books, end_plan, "base fee")?;
    if end_book
        .base_fee
        .as_ref()
        .is_some_and(|f| f.timing == Timing::InAdvance)
        && service.start < period.end
    {
        let next = billing_period(&end_book.billing_cycle, sub.started, period.end)?;
        if let Some(part) = service.intersect(&next) {
            lines.extend(r.base_line(LineKind::Base, end_plan, part, &next, Decimal::ONE)?);
        }
    }

    // Usage, grouped by (late period, term sheet).
    let mut excluded = Excluded::default();
    let mut groups: BTreeMap<(Option<Span>, &str), Vec<&UsageEvent>> = BTreeMap::new();
    for e in input.events {
        if e.subscription != sub.id {
            excluded.other_subscription += 1;
        } else if e.time >= period.end {
            excluded.after_period += 1;
        } else if e.time < service.start {
            excluded.in_trial += 1;
        } else if e.time >= service.end {
            excluded.after_service_end += 1;
        } else if e.time < period.start {
            let ctx = r.ctx(&e.term_sheet, &e.id)?;
            let own = billing_period(&ctx.book.billing_cycle, sub.started, e.time)?;
            groups
                .entry((Some(own), e.term_sheet.as_str()))
                .or_default()
                .push(e);
        } else {
            groups
                .entry((None, e.term_sheet.as_str()))
                .or_default()
                .push(e);
        }
    }
    let mut current_usage = Decimal::ZERO;
    for ((late, ts), mut events) in groups {
        sort_events(&mut events);
        let ctx = r.ctx(ts, &events[0].id)?;
        for charge in &ctx.book.charges {
            let sp = late.unwrap_or(period);
            if let Some(line) = usage_line(ctx, charge, ts, sp, late.is_some(), &events)? {
                if late.is_none() {
                    current_usage = add(current_usage, line.amount)?;
                }
                lines.push(line);
            }
        }
    }

    // The invoice's own rounding: the plan in effect at the end of the period.
    let last_plan = plan_at(
        &steps,
        period
            .end
            .checked_sub(SignedDuration::from_nanos(1))
            .unwrap_or(period.start),
    );
    let (minor, mode, grace_hours) = {
        let ctx = r.ctx(last_plan, "invoice")?;
        (ctx.minor, ctx.book.rounding, ctx.book.grace_hours)
    };

    // Minimum commitment of the last plan served in the period, prorated by the time
    // served (a first period after a trial owes only its share).
    if let (Some((first_seg, _)), Some((last_seg, ts))) = (segs.first(), segs.last()) {
        let ctx = r.ctx(ts, "minimum commitment")?;
        if let Some(commit) = ctx.book.minimum_commitment {
            let served_span = Span::new(first_seg.start, last_seg.end);
            let commit = prorate(commit, &served_span, &period)?;
            let spend = add(base_cost, current_usage)?;
            if let Some(mut line) = shortfall_line(&ctx.reference, commit, spend, minor, mode) {
                line.term_sheet = Some(ts.to_string());
                line.service_period = Some(served_span);
                lines.push(line);
            }
        }
    }

    let currency = r.ctx(last_plan, "invoice")?.book.currency.clone();
    let status = if input.now
        >= period
            .end
            .checked_add(SignedDuration::from_hours(i64::from(grace_hours)))
            .unwrap_or(Timestamp::MAX)
    {
        InvoiceStatus::Final
    } else {
        InvoiceStatus::Provisional
    };
    finish(Finish {
        subscription: sub.id.clone(),
        period,
        currency,
        minor,
        mode,
        status,
        lines,
        coupons: input.coupons,
        taxes: input.taxes,
        wallet_balance: input.wallet_balance,
        excluded,
    })
}

/// The opening invoice of a subscription: the `in_advance` base fee of the period in
/// which service starts (at the subscription start, or at the end of its trial),
/// prorated from that instant to the period's end, with coupons, taxes and credit.
pub fn rate_opening(
    subscription: &Subscription,
    books: &BTreeMap<String, PriceBook>,
    wallet_balance: Decimal,
    coupons: &[CouponGrant],
    taxes: &[TaxRate],
) -> Result<RatedInvoice, Error> {
    let steps = timeline(subscription, books)?;
    let service = service_window(subscription, books, &steps)?;
    let plan = plan_at(&steps, service.start);
    let mut r = Rater::new(books);
    let (cycle, minor, mode, currency, timing) = {
        let ctx = r.ctx(plan, "opening")?;
        (
            ctx.book.billing_cycle.clone(),
            ctx.minor,
            ctx.book.rounding,
            ctx.book.currency.clone(),
            ctx.book.base_fee.as_ref().map(|f| f.timing),
        )
    };
    let period = billing_period(&cycle, subscription.started, service.start)?;
    let mut lines = Vec::new();
    if timing == Some(Timing::InAdvance)
        && let Some(part) = service.intersect(&period)
    {
        lines.extend(r.base_line(LineKind::Base, plan, part, &period, Decimal::ONE)?);
    }
    finish(Finish {
        subscription: subscription.id.clone(),
        period,
        currency,
        minor,
        mode,
        status: InvoiceStatus::Final,
        lines,
        coupons,
        taxes,
        wallet_balance,
        excluded: Excluded::default(),
    })
}

struct Finish<'a> {
    subscription: String,
    period: Span,
    currency: String,
    minor: u32,
    mode: RoundingMode,
    status: InvoiceStatus,
    lines: Vec<InvoiceLine>,
    coupons: &'a [CouponGrant],
    taxes: &'a [TaxRate],
    wallet_balance: Decimal,
    excluded: Excluded,
}

fn applies(targets: &[String], line: &InvoiceLine) -> bool {
    targets.is_empty() || line.charge.as_ref().is_some_and(|c| targets.contains(c))
}

/// Coupons, taxes, prepaid credit and totals: the part of rating common to every invoice.
fn finish(f: Finish<'_>) -> Result<RatedInvoice, Error> {
    let Finish {
        subscription,
        period,
        currency,
        minor,
        mode,
        status,
        mut lines,
        coupons,
        taxes,
        wallet_balance,
        excluded,
    } = f;
    let charged = lines.len();
    // Discounts allocated to each charged line, so taxes on named lines see net amounts.
    let mut allocated = vec![Decimal::ZERO; charged];
    let mut grants: Vec<&CouponGrant> = coupons
        .iter()
        .filter(|g| g.coupon.periods.is_none_or(|n| g.periods_applied < n))
        .collect();
    grants.sort_by(|a, b| a.coupon.id.cmp(&b.coupon.id));
    for g in grants {
        let c = &g.coupon;
        let targets: Vec<usize> = (0..charged)
            .filter(|&i| applies(&c.applies_to, &lines[i]))
            .collect();
        let base = targets
            .iter()
            .map(|&i| lines[i].amount - allocated[i])
            .try_fold(Decimal::ZERO, add)?;
        if base <= Decimal::ZERO {
            continue;
        }
        let (unrounded, percent) = match &c.discount {
            Discount::Percent { percent } => {
                if *percent < Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                    return Err(Error::InvalidInput(format!(
                        "coupon {} percent must be 0–100",
                        c.id
                    )));
                }
                (mul(base, *percent)? / Decimal::ONE_HUNDRED, Some(*percent))
            }
            Discount::Amount { amount } => {
                if *amount < Decimal::ZERO {
                    return Err(Error::InvalidInput(format!(
                        "coupon {} amount must not be negative",
                        c.id
                    )));
                }
                ((*amount).min(base), None)
            }
        };
        // The line is the negative amount, and it is that amount that is rounded: with
        // `ceiling` a discount of −0.0062 rounds to 0.00 (toward +∞), not to −0.01 as
        // rounding its magnitude would give. Never more than what it applies to, even
        // after rounding away from zero.
        let line_amount = round(-unrounded, minor, mode).max(-base);
        let rounded = -line_amount;
        for &i in &targets {
            let share = mul(rounded, lines[i].amount - allocated[i])? / base;
            allocated[i] = add(allocated[i], share)?;
        }
        let mut line = InvoiceLine::new(LineKind::Discount, format!("Coupon {}", c.id));
        line.charge = Some(c.id.clone());
        line.percent = percent;
        line.base_amount = Some(base);
        line.amount_unrounded = -unrounded;
        line.amount = line_amount;
        if !rounded.is_zero() {
            lines.push(line);
        }
    }
    let subtotal = lines[..charged]
        .iter()
        .map(|l| l.amount)
        .try_fold(Decimal::ZERO, add)?;
    let discounts = lines[charged..]
        .iter()
        .map(|l| l.amount)
        .try_fold(Decimal::ZERO, add)?;
    let pre_tax_total = add(subtotal, discounts)?;

    let mut rates: Vec<&TaxRate> = taxes.iter().collect();
    rates.sort_by(|a, b| a.id.cmp(&b.id));
    let mut tax = Decimal::ZERO;
    for t in rates {
        if t.percent < Decimal::ZERO || t.percent > Decimal::ONE_HUNDRED {
            return Err(Error::InvalidInput(format!(
                "tax {} percent must be 0–100",
                t.id
            )));
        }
        let base = if t.applies_to.is_empty() {
            pre_tax_total
        } else {
            (0..charged)
                .filter(|&i| applies(&t.applies_to, &lines[i]))
                .map(|i| lines[i].amount - allocated[i])
                .try_fold(Decimal::ZERO, add)?
        };
        if base.is_zero() {
            continue;
        }
        let unrounded = mul(base, t.percent)? / Decimal::ONE_HUNDRED;
        let mut line = InvoiceLine::new(LineKind::Tax, format!("{} ({})", t.name, t.jurisdiction));
        line.charge = Some(t.id.clone());
        line.percent = Some(t.percent);
        line.base_amount = Some(base);
        line.amount_unrounded = unrounded;
        line.amount = round(unrounded, minor, mode);
        tax = add(tax, line.amount)?;
        lines.push(line);
    }
    let total = add(pre_tax_total, tax)?;

    // Prepaid credit pays what is due, in whole minor units.
    let balance = wallet_balance.max(Decimal::ZERO);
    let consumed = if total > Decimal::ZERO {
        round(balance.min(total), minor, RoundingMode::Down)
    } else {
        round(Decimal::ZERO, minor, mode)
    };
    if !consumed.is_zero() {
        let mut line = InvoiceLine::new(LineKind::CreditConsumption, "Prepaid credit".into());
        line.amount_unrounded = -consumed;
        line.amount = -consumed;
        lines.push(line);
    }
    let amount_due = lines
        .iter()
        .map(|l| l.amount)
        .try_fold(Decimal::ZERO, add)?;
    Ok(RatedInvoice {
        subscription,
        period,
        currency,
        rounding: mode,
        status,
        lines,
        subtotal,
        discounts,
        tax,
        pre_tax_total,
        total,
        amount_due,
        wallet: WalletUse {
            balance_before: wallet_balance,
            consumed,
            balance_after: wallet_balance - consumed,
        },
        excluded,
    })
}
