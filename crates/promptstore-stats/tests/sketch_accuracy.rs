//! Seeded randomized checks of the quantile sketch's contract: every quantile within the
//! stated relative error of the exact one on uniform, log-normal and heavy-tailed data, and
//! merging equal to sketching the concatenated data, in any grouping and order.

mod support;

use promptstore_stats::QuantileSketch;
use promptstore_stats::sketch::DEFAULT_RELATIVE_ACCURACY;
use support::rng::SplitMix64;

fn uniform(rng: &mut SplitMix64) -> f64 {
    1000.0 * rng.uniform()
}

fn log_normal(rng: &mut SplitMix64) -> f64 {
    (6.0 + 1.0 * rng.normal()).exp()
}

/// Pareto with shape 1.1 (infinite variance): a heavy tail across many orders of magnitude.
fn pareto(rng: &mut SplitMix64) -> f64 {
    rng.uniform_open0().powf(-1.0 / 1.1)
}

/// Latencies with some exact zeros (cache hits), as the analytics feature sees them.
fn with_zeros(rng: &mut SplitMix64) -> f64 {
    if rng.bernoulli(0.05) {
        0.0
    } else {
        log_normal(rng)
    }
}

/// Signed data, to exercise the negative buckets.
fn signed(rng: &mut SplitMix64) -> f64 {
    100.0 * rng.normal()
}

type Generator = fn(&mut SplitMix64) -> f64;

const GENERATORS: [(&str, Generator); 5] = [
    ("uniform", uniform),
    ("log-normal", log_normal),
    ("pareto", pareto),
    ("with zeros", with_zeros),
    ("signed", signed),
];

fn sketch_of(values: &[f64], alpha: f64) -> QuantileSketch {
    let mut s = QuantileSketch::new(alpha).expect("valid accuracy");
    for &v in values {
        s.insert(v).expect("finite value");
    }
    s
}

fn quantile_grid() -> Vec<f64> {
    let mut qs: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
    qs.extend([0.001, 0.005, 0.995, 0.999, 0.9999]);
    qs
}

fn assert_within_relative_error(name: &str, values: &[f64], sketch: &QuantileSketch, alpha: f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    for q in quantile_grid() {
        let exact = sorted[(q * (n - 1) as f64).floor() as usize];
        let estimate = sketch
            .quantile(q)
            .expect("q in [0, 1]")
            .expect("non-empty sketch");
        // The bound is α·|x|; 1e-9 relative slack covers rounding in log/exp.
        let allowed = alpha * exact.abs() * (1.0 + 1e-9);
        assert!(
            (estimate - exact).abs() <= allowed,
            "{name}, α = {alpha}, q = {q}: estimate {estimate}, exact {exact}, error {} > {allowed}",
            (estimate - exact).abs()
        );
    }
}

#[test]
fn every_quantile_is_within_the_relative_accuracy() {
    for (seed, alpha) in [(1u64, DEFAULT_RELATIVE_ACCURACY), (2, 0.05), (3, 0.001)] {
        for (name, generate) in GENERATORS {
            let mut rng = SplitMix64::new(seed * 1000 + name.len() as u64);
            let values: Vec<f64> = (0..20_000).map(|_| generate(&mut rng)).collect();
            let sketch = sketch_of(&values, alpha);
            assert_eq!(sketch.count(), values.len() as u64);
            assert_within_relative_error(name, &values, &sketch, alpha);
            let exact_sum: f64 = values.iter().sum();
            assert!((sketch.sum() - exact_sum).abs() <= 1e-9 * exact_sum.abs().max(1.0));
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((sketch.min(), sketch.max()), (Some(min), Some(max)));
        }
    }
}

#[test]
fn merge_equals_the_sketch_of_the_concatenation_in_any_order() {
    for (name, generate) in GENERATORS {
        let mut rng = SplitMix64::new(42 + name.len() as u64);
        let values: Vec<f64> = (0..9_000).map(|_| generate(&mut rng)).collect();
        // Uneven random split into three parts.
        let cut1 = 1 + (rng.next_u64() % 4000) as usize;
        let cut2 = cut1 + 1 + (rng.next_u64() % 4000) as usize;
        let (a, b, c) = (&values[..cut1], &values[cut1..cut2], &values[cut2..]);
        let (sa, sb, sc) = (sketch_of(a, 0.01), sketch_of(b, 0.01), sketch_of(c, 0.01));
        let whole = sketch_of(&values, 0.01);

        let merged = |first: &QuantileSketch, rest: &[&QuantileSketch]| {
            let mut m = first.clone();
            for s in rest {
                m.merge(s).unwrap();
            }
            m
        };
        let ab_c = merged(&merged(&sa, &[&sb]), &[&sc]);
        let a_bc = merged(&sa, &[&merged(&sb, &[&sc])]);
        let cb_a = merged(&sc, &[&sb, &sa]);
        for (label, m) in [("(a+b)+c", &ab_c), ("a+(b+c)", &a_bc), ("c+b+a", &cb_a)] {
            assert!(
                m.same_distribution(&whole),
                "{name}: {label} differs from the whole"
            );
            assert!((m.sum() - whole.sum()).abs() <= 1e-9 * whole.sum().abs().max(1.0));
            for q in quantile_grid() {
                assert_eq!(
                    m.quantile(q).unwrap(),
                    whole.quantile(q).unwrap(),
                    "{name} {label} q={q}"
                );
            }
        }
        // Merging an empty sketch changes nothing.
        let with_empty = merged(&whole, &[&QuantileSketch::default()]);
        assert!(with_empty.same_distribution(&whole));
        assert_within_relative_error(name, &values, &ab_c, 0.01);
    }
}

#[test]
fn encoding_round_trips_and_stays_compact() {
    let mut rng = SplitMix64::new(11);
    let values: Vec<f64> = (0..50_000).map(|_| with_zeros(&mut rng)).collect();
    let sketch = sketch_of(&values, DEFAULT_RELATIVE_ACCURACY);
    let bytes = sketch.to_bytes();
    let decoded = QuantileSketch::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, sketch);
    // ~700 buckets over six orders of magnitude: a few bytes each.
    assert!(bytes.len() < 4096, "encoded size {}", bytes.len());
    assert_within_relative_error("decoded", &values, &decoded, DEFAULT_RELATIVE_ACCURACY);
}
