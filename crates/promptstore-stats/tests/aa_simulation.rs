//! A/A (and A/B) simulations: with no true difference the fixed-horizon test rejects about
//! alpha of the time, and the sequential test stays at or below alpha even when peeking after
//! every batch — where peeking at the fixed-horizon test clearly does not. A real effect is
//! still found, so the sequential test is not vacuously conservative.

mod support;

use promptstore_stats::classical::{Counts, z_test_pooled};
use promptstore_stats::{
    ArmStats, FrequentistConfig, SequentialConfig, sequential_test, two_sided_t_test,
};
use support::rng::SplitMix64;

const ALPHA: f64 = 0.05;

/// Running sufficient statistics of a binomial arm.
#[derive(Default, Clone, Copy)]
struct Binomial {
    n: u64,
    successes: u64,
}

impl Binomial {
    fn add_batch(&mut self, rng: &mut SplitMix64, units: u64, p: f64) {
        for _ in 0..units {
            self.n += 1;
            self.successes += u64::from(rng.bernoulli(p));
        }
    }

    fn stats(&self) -> ArmStats {
        ArmStats::proportion(self.n, self.successes).expect("successes never exceed n")
    }
}

#[test]
fn fixed_horizon_false_positive_rate_is_near_alpha() {
    let mut rng = SplitMix64::new(20240501);
    let sims = 2000;
    let (mut gb_rejections, mut z_rejections) = (0, 0);
    for _ in 0..sims {
        let (mut a, mut b) = (Binomial::default(), Binomial::default());
        a.add_batch(&mut rng, 1000, 0.1);
        b.add_batch(&mut rng, 1000, 0.1);
        let r = two_sided_t_test(&a.stats(), &b.stats(), &FrequentistConfig::default()).unwrap();
        gb_rejections += usize::from(r.p_value < ALPHA);
        let z = z_test_pooled(
            Counts::new(a.successes, a.n).unwrap(),
            Counts::new(b.successes, b.n).unwrap(),
        );
        z_rejections += usize::from(z.p_value.unwrap() < ALPHA);
    }
    // Binomial(2000, 0.05) has sd ≈ 9.7 rejections: ±3 sd is [71, 129].
    for (name, rejections) in [("gbstats t", gb_rejections), ("pooled z", z_rejections)] {
        let fpr = rejections as f64 / sims as f64;
        eprintln!("{name}: fixed-horizon A/A false-positive rate {fpr}");
        assert!(
            (0.035..=0.065).contains(&fpr),
            "{name}: A/A false-positive rate {fpr}"
        );
    }
}

#[test]
fn fixed_horizon_continuous_false_positive_rate_is_near_alpha() {
    let mut rng = SplitMix64::new(7);
    let sims = 1000;
    let mut rejections = 0;
    for _ in 0..sims {
        let mut arm = || {
            let (mut s, mut q) = (0.0, 0.0);
            for _ in 0..400 {
                // Log-normal latencies: skewed, like the real metric.
                let x = (6.0 + 0.5 * rng.normal()).exp();
                s += x;
                q += x * x;
            }
            ArmStats::sample_mean(400, s, q).unwrap()
        };
        let (a, b) = (arm(), arm());
        let r = two_sided_t_test(&a, &b, &FrequentistConfig::default()).unwrap();
        rejections += usize::from(r.p_value < ALPHA);
    }
    let fpr = rejections as f64 / sims as f64;
    eprintln!("continuous: fixed-horizon A/A false-positive rate {fpr}");
    // Binomial(1000, 0.05): sd ≈ 6.9 rejections; ±3 sd.
    assert!(
        (0.029..=0.071).contains(&fpr),
        "A/A false-positive rate {fpr}"
    );
}

/// Run `sims` experiments of `looks` batches of `batch` units per arm; return the share of
/// experiments that some look declared significant, for the sequential test and for the
/// fixed-horizon test misused with peeking.
fn peeking_rejection_rates(
    seed: u64,
    sims: usize,
    looks: usize,
    batch: u64,
    pb: f64,
) -> (f64, f64) {
    let mut rng = SplitMix64::new(seed);
    let seq_cfg = SequentialConfig::default();
    let freq_cfg = FrequentistConfig::default();
    let (mut seq_rejected, mut naive_rejected) = (0, 0);
    for _ in 0..sims {
        let (mut a, mut b) = (Binomial::default(), Binomial::default());
        let (mut seq_hit, mut naive_hit) = (false, false);
        for _ in 0..looks {
            a.add_batch(&mut rng, batch, 0.1);
            b.add_batch(&mut rng, batch, pb);
            let (sa, sb) = (a.stats(), b.stats());
            seq_hit |= sequential_test(&sa, &sb, &seq_cfg)
                .expect("valid config")
                .result
                .p_value
                < ALPHA;
            naive_hit |= two_sided_t_test(&sa, &sb, &freq_cfg)
                .expect("valid config")
                .p_value
                < ALPHA;
        }
        seq_rejected += usize::from(seq_hit);
        naive_rejected += usize::from(naive_hit);
    }
    (
        seq_rejected as f64 / sims as f64,
        naive_rejected as f64 / sims as f64,
    )
}

#[test]
fn sequential_test_keeps_alpha_under_continuous_peeking() {
    let (sequential, naive) = peeking_rejection_rates(99, 1000, 20, 100, 0.1);
    eprintln!("A/A with 20 peeks: sequential {sequential}, naive fixed-horizon {naive}");
    assert!(
        sequential <= ALPHA,
        "sequential A/A rejection rate with peeking: {sequential}"
    );
    // Peeking at the fixed-horizon test 20 times inflates its error well beyond alpha:
    // this is what the sequential test protects against.
    assert!(naive > 0.1, "naive peeking rejection rate: {naive}");
}

#[test]
fn sequential_test_still_detects_a_real_effect() {
    // 10% → 13% conversion, up to 4000 units per arm: the sequential test finds it in most runs.
    let (power, _) = peeking_rejection_rates(5, 200, 20, 200, 0.13);
    eprintln!("A/B 10% vs 13% with 20 peeks: sequential power {power}");
    assert!(power > 0.7, "sequential power {power}");
}
