//! Properties of the money rules, over generated quantities, tiers and events.

use crate::support::*;
use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_billing::*;

/// Tiers with increasing bounds, prices of up to 12 decimal places and flat fees.
fn tiers() -> impl Strategy<Value = Vec<Tier>> {
    prop::collection::vec((1u32..5_000, 0u64..5_000_000_000_000, 0u32..1_000), 1..5).prop_map(
        |raw| {
            let mut bound = 0u64;
            let n = raw.len();
            raw.into_iter()
                .enumerate()
                .map(|(i, (step, price, flat))| {
                    bound += u64::from(step);
                    Tier {
                        up_to: (i + 1 < n).then(|| Decimal::from(bound)),
                        unit_price: Decimal::new(price as i64, 12),
                        flat_fee: Some(Decimal::new(i64::from(flat), 2)),
                    }
                })
                .collect()
        },
    )
}

fn amount() -> impl Strategy<Value = Decimal> {
    (0i64..10_000_000).prop_map(|c| Decimal::new(c, 2))
}

proptest! {
    #[test]
    fn graduated_is_monotone_and_the_sum_of_its_tiers(t in tiers(), q in 0u64..30_000, extra in 0u64..5_000) {
        let a = graduated_tiers(Decimal::from(q), &t).unwrap();
        let b = graduated_tiers(Decimal::from(q + extra), &t).unwrap();
        prop_assert!(a.amount <= b.amount);
        let sum: Decimal = a.tiers.iter().map(|u| u.amount).sum();
        prop_assert_eq!(sum, a.amount);
        let units: Decimal = a.tiers.iter().map(|u| u.units).sum();
        prop_assert_eq!(units, Decimal::from(q));
    }

    #[test]
    fn volume_never_exceeds_top_price_times_units_plus_flat(t in tiers(), q in 0u64..30_000) {
        let v = volume_tiers(Decimal::from(q), &t).unwrap();
        let top = t.iter().map(|x| x.unit_price).max().unwrap();
        let flat = t.iter().map(|x| x.flat_fee.unwrap_or_default()).max().unwrap();
        prop_assert!(v.amount <= top * Decimal::from(q) + flat);
    }

    #[test]
    fn package_is_ceil_of_billable_blocks(q in 0u64..400, free in 0u64..100, size in 1u64..50, cents in 0i64..10_000) {
        let price = Decimal::new(cents, 2);
        let b = book(json!({
            "id": "pk", "version": "1", "currency": "USD",
            "meters": [{ "id": "calls", "aggregate": "count" }],
            "charges": [{ "id": "calls", "meter": "calls", "free_units": free.to_string(),
                "price": { "model": "package", "package_size": size.to_string(), "package_price": price.to_string() } }]
        }));
        let events = calls(q as usize, "ts");
        let line = rate_usage_line(&b, "ts", "calls", march(), &events).unwrap();
        let billable = q.saturating_sub(free);
        let expected = Decimal::from(billable.div_ceil(size)) * price;
        prop_assert_eq!(line.map(|l| l.amount_unrounded).unwrap_or_default(), expected);
    }

    #[test]
    fn percentage_fees_stay_within_min_and_max(
        amounts in prop::collection::vec(amount(), 0..60),
        percent in 0i64..10_000,
        lo in 0i64..500,
        span in 0i64..5_000,
        free_events in prop::option::of(0u64..10),
        free_amount in prop::option::of(amount()),
    ) {
        let t = PercentageTerms {
            percent: Decimal::new(percent, 2),
            fixed_fee: Decimal::new(30, 2),
            min_fee: Some(Decimal::new(lo, 2)),
            max_fee: Some(Decimal::new(lo + span, 2)),
            free_events,
            free_amount,
        };
        let o = percentage(amounts.iter().copied(), &t).unwrap();
        let n = Decimal::from(o.charged_events);
        prop_assert!(o.amount >= n * t.min_fee.unwrap());
        prop_assert!(o.amount <= n * t.max_fee.unwrap());
        if let Some(f) = free_events {
            prop_assert!(o.free_events_used <= f);
        }
        if let Some(f) = free_amount {
            prop_assert!(o.free_amount_used <= f);
        }
    }

    #[test]
    fn proration_of_a_full_period_is_the_full_fee(start in 0i64..2_000_000_000, len in 1i64..40_000_000, cents in 0i64..100_000_000) {
        let fee = Decimal::new(cents, 2);
        let s = Timestamp::from_second(start).unwrap();
        let e = Timestamp::from_second(start + len).unwrap();
        let whole = Span::new(s, e);
        prop_assert_eq!(prorate(fee, &whole, &whole).unwrap(), fee);
        // Two halves prorate to the whole fee, up to the last of 28 digits.
        let mid = Timestamp::from_second(start + len / 2).unwrap();
        let parts = prorate(fee, &Span::new(s, mid), &whole).unwrap()
            + prorate(fee, &Span::new(mid, e), &whole).unwrap();
        prop_assert!((parts - fee).abs() < Decimal::new(1, 20));
    }
}

/// Events for the rating properties: calls and payments under two price book versions.
fn events() -> impl Strategy<Value = Vec<UsageEvent>> {
    prop::collection::vec(
        (0i64..31 * 86_400, 0u8..4, any::<bool>(), 0i64..100_000),
        0..150,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (offset, kind, v2, cents))| {
                let sheet = if v2 { "ts-v2" } else { "ts-v1" };
                let mut e = match kind {
                    0 => pay(
                        &format!("e{i:04}"),
                        "2025-03-01T00:00:00Z",
                        sheet,
                        &Decimal::new(cents, 2).to_string(),
                    ),
                    1 => ev(
                        &format!("e{i:04}"),
                        "2025-03-01T00:00:00Z",
                        sheet,
                        "getForecast",
                        503,
                    ),
                    _ => ev(
                        &format!("e{i:04}"),
                        "2025-03-01T00:00:00Z",
                        sheet,
                        "getForecast",
                        200,
                    ),
                };
                // Ties in time are frequent on purpose: order must come from ids then.
                e.time = Timestamp::from_second(
                    ts("2025-03-01T00:00:00Z").as_second() + offset / 3600 * 3600,
                )
                .unwrap();
                e
            })
            .collect()
    })
}

fn v2_book() -> PriceBook {
    let mut v = serde_json::to_value(pro_book()).unwrap();
    v["version"] = json!("2025-04");
    v["charges"][0]["price"]["tiers"][1]["unit_price"] = json!("0.004");
    book(v)
}

fn rate_all(events: &[UsageEvent], wallet: Decimal) -> RatedInvoice {
    let (v1, v2) = (pro_book(), v2_book());
    let bs = books(&[("ts-v1", &v1), ("ts-v2", &v2)]);
    let coupons = [CouponGrant {
        coupon: Coupon {
            id: "c".into(),
            discount: Discount::Percent { percent: d("12.5") },
            applies_to: vec!["payment-fees".into()],
            periods: None,
        },
        periods_applied: 0,
    }];
    let taxes = [TaxRate {
        id: "t".into(),
        jurisdiction: "DE".into(),
        name: "USt".into(),
        percent: d("19"),
        applies_to: vec![],
    }];
    rate(&RatingInput {
        subscription: &sub("ts-v1", "2025-01-01T00:00:00Z"),
        books: &bs,
        period: march(),
        events,
        wallet_balance: wallet,
        coupons: &coupons,
        taxes: &taxes,
        now: ts("2030-01-01T00:00:00Z"),
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn totals_are_sums_of_rounded_lines(evs in events(), wallet in amount()) {
        let inv = rate_all(&evs, wallet);
        let sum: Decimal = inv.lines.iter().map(|l| l.amount).sum();
        prop_assert_eq!(sum, inv.amount_due);
        prop_assert_eq!(inv.pre_tax_total + inv.tax, inv.total);
        for l in &inv.lines {
            prop_assert!(l.amount.scale() == 2, "{:?}", l);
            if l.kind != LineKind::CreditConsumption {
                prop_assert_eq!(round(l.amount_unrounded, 2, RoundingMode::HalfUp), l.amount);
            }
        }
    }

    #[test]
    fn rating_does_not_depend_on_event_order(evs in events(), seed in any::<u64>()) {
        let mut shuffled = evs.clone();
        // A deterministic shuffle (Fisher–Yates on a small LCG) from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(rate_all(&evs, Decimal::ZERO), rate_all(&shuffled, Decimal::ZERO));
    }

    #[test]
    fn usage_lines_are_reproducible(evs in events()) {
        let inv = rate_all(&evs, Decimal::ZERO);
        let (v1, v2) = (pro_book(), v2_book());
        for line in inv.lines.iter().filter(|l| l.kind == LineKind::Usage) {
            let sheet = line.term_sheet.as_deref().unwrap();
            let book = if sheet == "ts-v1" { &v1 } else { &v2 };
            // A consumer holding only this term sheet's events recomputes the line.
            let mine: Vec<UsageEvent> = evs.iter().filter(|e| e.term_sheet == sheet).cloned().collect();
            let again = rate_usage_line(book, sheet, line.charge.as_deref().unwrap(), march(), &mine)
                .unwrap()
                .unwrap();
            prop_assert_eq!(&again, line);
        }
    }
}
