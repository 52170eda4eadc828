//! Degenerate but valid inputs (empty arms, single units, 0% and 100% rates, negative and
//! huge values, extreme alphas) never panic: every engine returns numbers or a placeholder.

use promptstore_stats::bayesian::GaussianPrior;
use promptstore_stats::classical::{self, Counts};
use promptstore_stats::power::{MdeType, sample_size_mean, sample_size_proportion};
use promptstore_stats::{
    ArmStats, BayesianConfig, DifferenceType, FrequentistConfig, SequentialConfig, bayesian_test,
    sequential_test, two_sided_t_test,
};

fn arms() -> Vec<ArmStats> {
    let mut v = Vec::new();
    for (n, x) in [
        (0, 0),
        (1, 0),
        (1, 1),
        (2, 1),
        (10, 0),
        (10, 10),
        (10, 3),
        (1_000_000_000, 7),
    ] {
        v.push(ArmStats::proportion(n, x).expect("valid arm"));
    }
    for (n, s, q) in [
        (0, 0.0, 0.0),
        (1, 5.0, 25.0),
        (2, 0.0, 2.0),
        (3, -6.0, 14.0),
        (5, 1e12, 3e23),
        (4, 4.0, 4.0),
    ] {
        v.push(ArmStats::sample_mean(n, s, q).expect("valid arm"));
    }
    v
}

#[test]
fn engines_return_numbers_or_placeholders_for_every_pair() {
    let arms = arms();
    for alpha in [1e-12, 0.05, 0.5, 0.999] {
        for diff in [DifferenceType::Relative, DifferenceType::Absolute] {
            for a in &arms {
                for b in &arms {
                    let f = two_sided_t_test(
                        a,
                        b,
                        &FrequentistConfig {
                            alpha,
                            difference_type: diff,
                        },
                    )
                    .unwrap();
                    assert!(
                        f.error.is_some() || (0.0..=1.0).contains(&f.p_value),
                        "{a:?} {b:?} {f:?}"
                    );
                    let s = sequential_test(
                        a,
                        b,
                        &SequentialConfig {
                            alpha,
                            difference_type: diff,
                            tuning: 5000.0,
                        },
                    )
                    .unwrap();
                    assert!((0.0..=1.0).contains(&s.result.p_value), "{a:?} {b:?} {s:?}");
                    for prior in [
                        GaussianPrior::default(),
                        GaussianPrior::app_default_proper(),
                    ] {
                        let cfg = BayesianConfig {
                            alpha,
                            difference_type: diff,
                            inverse: false,
                            prior,
                        };
                        let r = bayesian_test(a, b, &cfg).unwrap();
                        assert!((0.0..=1.0).contains(&r.chance_to_win), "{a:?} {b:?} {r:?}");
                        assert!(r.risk_control >= 0.0 && r.risk_treatment >= 0.0, "{r:?}");
                    }
                    let _ = classical::welch_t_test(a, b, alpha).unwrap();
                    let _ = classical::student_t_test(a, b, alpha).unwrap();
                    let _ = classical::relative_delta_ci(a, b, alpha).unwrap();
                }
            }
        }
    }
}

#[test]
fn invalid_configs_are_errors_not_panics() {
    let a = ArmStats::proportion(100, 10).unwrap();
    for alpha in [0.0, 1.0, -0.1, f64::NAN] {
        let err = two_sided_t_test(
            &a,
            &a,
            &FrequentistConfig {
                alpha,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("alpha"), "{err}");
    }
    let err = sequential_test(
        &a,
        &a,
        &SequentialConfig {
            tuning: 0.0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("tuning"), "{err}");
}

#[test]
fn classical_tests_at_the_edges() {
    let counts = [(0, 1), (1, 1), (0, 50), (50, 50), (3, 7), (1, 1_000_000)];
    for &(xa, na) in &counts {
        for &(xb, nb) in &counts {
            let (a, b) = (Counts::new(xa, na).unwrap(), Counts::new(xb, nb).unwrap());
            let p = classical::fisher_exact_p(a, b);
            assert!((0.0..=1.0).contains(&p), "fisher {a:?} {b:?} {p}");
            if let Some(p) = classical::chi2_yates_p(a, b) {
                assert!((0.0..=1.0).contains(&p), "yates {a:?} {b:?} {p}");
            }
            let _ = classical::z_test_pooled(a, b);
            let _ = classical::newcombe_diff_ci(a, b, 0.05).unwrap();
            let _ = classical::katz_log_relative_ci(a, b, 0.05).unwrap();
        }
    }
}

#[test]
fn sample_sizes_at_extreme_settings_do_not_panic() {
    for alpha in [1e-300, 1e-17, 1e-6, 0.5] {
        for power in [1e-9, 0.5, 0.999_999] {
            let _ = sample_size_mean(1.0, 0.1, alpha, power);
            let _ = sample_size_proportion(0.01, 0.5, MdeType::Relative, alpha, power);
        }
    }
    // An effect too small to detect with any realistic sample is a named error.
    let err = sample_size_mean(1.0, 1e-12, 0.05, 0.8).unwrap_err();
    assert!(err.to_string().contains("sample size"), "{err}");
}
