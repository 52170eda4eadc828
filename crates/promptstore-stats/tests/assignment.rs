//! Arm assignment over many units: sticky, and distributed as the weights say (chi-square
//! goodness of fit), including uneven weights and zero-weight arms.

use promptstore_stats::{ArmWeights, srm_test};

fn shares(weights: &[f64], experiment: &str, units: usize) -> Vec<u64> {
    let w = ArmWeights::new(weights).expect("valid weights");
    let mut counts = vec![0u64; weights.len()];
    for u in 0..units {
        counts[w.assign(experiment, &format!("user-{u}"))] += 1;
    }
    counts
}

#[test]
fn assignment_is_sticky() {
    let w = ArmWeights::new(&[0.2, 0.3, 0.5]).unwrap();
    for u in 0..1000 {
        let unit = format!("unit-{u}");
        let first = w.assign("exp-sticky", &unit);
        assert_eq!(w.assign("exp-sticky", &unit), first);
        assert_eq!(
            promptstore_stats::assign_arm("exp-sticky", &unit, &[0.2, 0.3, 0.5]).unwrap(),
            first
        );
    }
}

#[test]
fn assignment_follows_the_weights() {
    for (experiment, weights) in [
        ("exp-even", vec![1.0, 1.0]),
        ("exp-three", vec![1.0, 1.0, 1.0]),
        ("exp-uneven", vec![0.5, 0.3, 0.2]),
        ("exp-90-10", vec![0.9, 0.1]),
        ("exp-paused-arm", vec![0.5, 0.0, 0.5]),
    ] {
        let counts = shares(&weights, experiment, 30_000);
        for (c, w) in counts.iter().zip(&weights) {
            if *w == 0.0 {
                assert_eq!(*c, 0, "{experiment}: a zero-weight arm got units");
            }
        }
        // Pearson goodness of fit, as the SRM check computes it: a fair hash passes.
        let srm = srm_test(&counts, &weights).unwrap();
        assert!(
            srm.p_value > 0.001,
            "{experiment}: counts {counts:?}, p = {}",
            srm.p_value
        );
    }
}

#[test]
fn experiments_assign_independently() {
    // The same unit lands in unrelated arms across experiments: a 2×2 table of arms in two
    // 50/50 experiments is balanced.
    let w = ArmWeights::new(&[1.0, 1.0]).unwrap();
    let mut table = [0u64; 4];
    for u in 0..20_000 {
        let unit = format!("u{u}");
        table[w.assign("exp-a", &unit) * 2 + w.assign("exp-b", &unit)] += 1;
    }
    let srm = srm_test(&table, &[1.0; 4]).unwrap();
    assert!(
        srm.p_value > 0.001,
        "joint table {table:?}, p = {}",
        srm.p_value
    );
}
