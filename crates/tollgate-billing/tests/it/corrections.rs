//! Payouts, reconciliation, credit notes and SLA credits.

use crate::support::*;
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_billing::*;

fn invoice_with_tax() -> RatedInvoice {
    // Base 100.00 in arrears + 20 % VAT = 120.00; wallet 30 → 90.00 due.
    let b = book(json!({
        "id": "p", "version": "1", "currency": "USD",
        "base_fee": { "amount": "100", "timing": "in_arrears" }
    }));
    let bs = books(&[("ts", &b)]);
    rate(&RatingInput {
        subscription: &sub("ts", "2025-01-01T00:00:00Z"),
        books: &bs,
        period: march(),
        events: &[],
        wallet_balance: d("30"),
        coupons: &[],
        taxes: &[TaxRate {
            id: "vat".into(),
            jurisdiction: "FR".into(),
            name: "VAT".into(),
            percent: d("20"),
            applies_to: vec![],
        }],
        now: ts("2030-01-01T00:00:00Z"),
    })
    .unwrap()
}

#[test]
fn payout_takes_fee_and_refunds_from_pre_tax_gross() {
    let inv = invoice_with_tax();
    assert_eq!(inv.pre_tax_total, d("100.00"));
    // Gross 100.00 (the VAT is not the provider's); 15 % fee = 15.00; refunds 5.00;
    // net 80.00.
    let p = payout(
        "prov-1",
        "USD",
        &[&inv],
        &MarketplaceFee::Percentage { percent: d("15") },
        d("5"),
        RoundingMode::HalfUp,
    )
    .unwrap();
    assert_eq!(
        (p.gross, p.marketplace_fee, p.net_payable),
        (d("100.00"), d("15.00"), d("80.00"))
    );
    // Tiered: 20 % of the first 60 = 12, 10 % of the next 40 = 4, + flat 1 = 17.00.
    let tiered = MarketplaceFee::Tiered {
        tiers: vec![
            PercentTier {
                up_to: Some(d("60")),
                percent: d("20"),
                flat_fee: None,
            },
            PercentTier {
                up_to: None,
                percent: d("10"),
                flat_fee: Some(d("1")),
            },
        ],
    };
    let p2 = payout(
        "prov-1",
        "USD",
        &[&inv],
        &tiered,
        Decimal::ZERO,
        RoundingMode::HalfUp,
    )
    .unwrap();
    assert_eq!(p2.marketplace_fee, d("17.00"));
    assert_eq!(p2.fee_tiers.len(), 2);
    let r = reconcile(std::slice::from_ref(&inv), std::slice::from_ref(&p)).unwrap();
    assert!(r.balanced(), "{r:?}");
    let r = reconcile(&[inv.clone(), inv], &[p]).unwrap();
    assert_eq!(r.difference, d("100.00"));
    assert!(!r.balanced());
}

#[test]
fn credit_note_splits_between_amount_due_and_beyond() {
    let inv = invoice_with_tax();
    assert_eq!((inv.total, inv.amount_due), (d("120.00"), d("90.00")));
    // 40 paid of 90 due: 50 outstanding. A 70.00 note reduces the due by 50 and credits 20.
    let s = credit_note(
        &inv,
        d("40"),
        Decimal::ZERO,
        &CreditRequest::Amount(d("70")),
    )
    .unwrap();
    assert_eq!(
        (s.reduces_amount_due, s.credited_beyond),
        (d("50"), d("20"))
    );
    // Crediting the base and tax lines (120.00) when nothing was paid: 90 off the due,
    // 30 beyond (the prepaid credit that paid the rest goes back).
    let s = credit_note(
        &inv,
        Decimal::ZERO,
        Decimal::ZERO,
        &CreditRequest::Lines(vec![0, 1]),
    )
    .unwrap();
    assert_eq!(
        (s.total, s.reduces_amount_due, s.credited_beyond),
        (d("120.00"), d("90.00"), d("30.00"))
    );
    // After an earlier 100.00 note, at most 20.00 is left to credit.
    assert!(
        credit_note(
            &inv,
            Decimal::ZERO,
            d("100"),
            &CreditRequest::Amount(d("21"))
        )
        .is_err()
    );
    // The credit consumption line is not a charge.
    assert!(
        credit_note(
            &inv,
            Decimal::ZERO,
            Decimal::ZERO,
            &CreditRequest::Lines(vec![2])
        )
        .is_err()
    );
}

#[test]
fn sla_credit_takes_the_lowest_threshold_reached() {
    let sla = SlaTerms {
        availability: d("99.9"),
        credits: vec![(d("99.9"), d("10")), (d("99"), d("25"))],
    };
    let check = |good: u64, total: u64, met: bool, pct: &str, amount: &str| {
        let c = sla_credit(&sla, good, total, d("200.00"), 2, RoundingMode::HalfUp).unwrap();
        assert_eq!(
            (c.met, c.percent, c.amount),
            (met, d(pct), d(amount)),
            "{good}/{total}"
        );
    };
    check(9990, 10_000, true, "0", "0.00"); // 99.9 % exactly: met.
    check(9989, 10_000, false, "10", "20.00"); // 99.89 %: 10 % of 200.
    check(9900, 10_000, false, "10", "20.00"); // 99 % exactly is not below 99.
    check(9899, 10_000, false, "25", "50.00"); // 98.99 %: 25 %.
    check(0, 0, true, "0", "0.00"); // no traffic, nothing failed.
    let (good, total) = availability_counts([200, 201, 404, 500, 503, 302]);
    assert_eq!((good, total), (4, 6));
}
