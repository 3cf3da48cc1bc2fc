//! One full invoice as JSON: base fee, graduated usage, percentage fees, a coupon, a tax
//! and prepaid credit.

use crate::support::*;
use tollgate_billing::*;

#[test]
fn full_invoice() {
    // Base 49.00 in arrears.
    // Calls: 2 600 successful forecasts (100 failed ones do not count), 1 000 free →
    //   1 600: tier 1 1 000 × 0.01 = 10.00; tier 2 600 × 0.005 = 3.00 + flat 5 = 8.00.
    //   18.00.
    // Payments: 100.00 (free, first event), 5.00 → 0.145 + 0.30 = 0.445 → min 0.50,
    //   250.00 → 7.25 + 0.30 = 7.55. 8.05.
    // Subtotal 75.05; coupon 10 % = 7.505 → −7.51; pre-tax 67.54; VAT 20 % = 13.508 →
    // 13.51; total 81.05; wallet 20.00 → due 61.05.
    let b = pro_book();
    let bs = books(&[("ts-pro", &b)]);
    let mut events = calls(2600, "ts-pro");
    let mut failed = calls(100, "ts-pro");
    for (i, e) in failed.iter_mut().enumerate() {
        e.id = format!("f{i:04}");
        e.status = 503;
    }
    events.extend(failed);
    events.push(pay("p1", "2025-03-03T10:00:00Z", "ts-pro", "100.00"));
    events.push(pay("p2", "2025-03-04T10:00:00Z", "ts-pro", "5.00"));
    events.push(pay("p3", "2025-03-05T10:00:00Z", "ts-pro", "250.00"));
    let coupons = [CouponGrant {
        coupon: Coupon {
            id: "launch-10".into(),
            discount: Discount::Percent { percent: d("10") },
            applies_to: vec![],
            periods: Some(3),
        },
        periods_applied: 1,
    }];
    let taxes = [TaxRate {
        id: "fr-vat-20".into(),
        jurisdiction: "FR".into(),
        name: "VAT 20 %".into(),
        percent: d("20"),
        applies_to: vec![],
    }];
    let inv = rate(&RatingInput {
        subscription: &sub("ts-pro", "2025-01-01T00:00:00Z"),
        books: &bs,
        period: march(),
        events: &events,
        wallet_balance: d("20.00"),
        coupons: &coupons,
        taxes: &taxes,
        now: ts("2025-04-02T00:00:00Z"),
    })
    .unwrap();
    assert_eq!(inv.amount_due, d("61.05"));
    let sum: rust_decimal::Decimal = inv.lines.iter().map(|l| l.amount).sum();
    assert_eq!(sum, inv.amount_due);
    // Nothing is redacted: every id, time and the book's hash are fixed inputs, and the
    // hash in the snapshot pins the canonical encoding (changing it is a new version).
    insta::assert_json_snapshot!(inv);
}
