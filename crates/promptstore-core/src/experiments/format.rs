//! Numbers in plain-language messages: lifts as signed percentages, p-values, counts.

/// A relative lift as a signed percentage: `+12.3%`.
pub(crate) fn pct(x: f64) -> String {
    if !x.is_finite() {
        return "undefined".into();
    }
    let v = x * 100.0;
    if v.abs() >= 10.0 {
        format!("{v:+.1}%")
    } else {
        format!("{v:+.2}%")
    }
}

/// A probability or share as a percentage without sign: `97.5%`.
pub(crate) fn share(x: f64) -> String {
    if !x.is_finite() {
        return "undefined".into();
    }
    format!("{:.1}%", x * 100.0)
}

/// A p-value: four decimals, or `< 0.0001`.
pub(crate) fn p_value(p: f64) -> String {
    if !p.is_finite() {
        "undefined".into()
    } else if p < 0.0001 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// `p = 0.0123`, or `p < 0.0001`.
pub(crate) fn p_clause(p: f64) -> String {
    let v = p_value(p);
    if v.starts_with('<') {
        format!("p {v}")
    } else {
        format!("p = {v}")
    }
}

/// A number with about four significant digits, without exponent for everyday sizes.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return "undefined".into();
    }
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-4..1e9).contains(&a) {
        format!("{x:.4e}")
    } else {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 8) as usize;
        format!("{x:.decimals$}")
    }
}

/// The confidence level of an alpha: `95`.
pub(crate) fn level(alpha: f64) -> String {
    let l = (1.0 - alpha) * 100.0;
    if (l - l.round()).abs() < 1e-9 {
        format!("{}", l.round() as i64)
    } else {
        format!("{l:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(pct(0.123), "+12.3%");
        assert_eq!(pct(-0.05), "-5.00%");
        assert_eq!(share(0.975), "97.5%");
        assert_eq!(p_value(0.01234), "0.0123");
        assert_eq!(p_value(1e-9), "< 0.0001");
        assert_eq!(p_clause(1e-9), "p < 0.0001");
        assert_eq!(p_clause(0.5), "p = 0.5000");
        assert_eq!(num(1234.5678), "1235");
        assert_eq!(num(0.5), "0.5000");
        assert_eq!(num(0.0), "0");
        assert_eq!(level(0.05), "95");
        assert_eq!(level(0.025), "97.5");
        assert_eq!(pct(f64::NAN), "undefined");
    }
}
