//! How reports write numbers, the same in every format: counts with thousands separators,
//! fractions as percentages, durations in milliseconds.

/// `12,345`.
pub fn count(n: u64) -> String {
    group(&n.to_string())
}

/// Thousands separators in the integer part of an unsigned decimal: `12500.5` → `12,500.5`.
pub(crate) fn group(s: &str) -> String {
    let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, rest) = s.split_at(int_len);
    let mut out = String::with_capacity(s.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(rest);
    out
}

/// A fraction 0–1 as a percentage with `decimals` decimals: `0.99953` → `99.95 %`.
pub fn percent(fraction: f64, decimals: usize) -> String {
    format!("{:.*} %", decimals, fraction * 100.0)
}

/// A percentage with enough decimals to tell 99.9 % from 99.95 % and 0.5 % from 0.05 %.
pub fn share(fraction: f64) -> String {
    let p = fraction * 100.0;
    let decimals = if (p != 0.0 && p.abs() < 1.0) || (p > 99.0 && p < 100.0) {
        2
    } else {
        1
    };
    format!("{p:.decimals$} %")
}

/// Milliseconds: `87.4 ms` under 100, `1,250 ms` from there.
pub fn ms(v: f64) -> String {
    if v.abs() < 100.0 {
        format!("{v:.1} ms")
    } else {
        let rounded = v.round();
        let sign = if rounded < 0.0 { "-" } else { "" };
        format!("{sign}{} ms", count(rounded.abs() as u64))
    }
}

/// A relative change with its sign: `+12.5 %`, `-3.0 %`, `0.0 %`.
pub fn signed_percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p.abs() < 0.05 {
        "0.0 %".to_owned()
    } else {
        format!("{p:+.1} %")
    }
}

/// A value that may be missing: `–` when it is.
pub fn or_dash<T>(v: Option<T>, show: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "–".to_owned(), show)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_the_same_everywhere() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(percent(0.99953, 2), "99.95 %");
        assert_eq!(share(0.5), "50.0 %");
        assert_eq!(share(0.9995), "99.95 %");
        assert_eq!(share(0.0005), "0.05 %");
        assert_eq!(share(1.0), "100.0 %");
        assert_eq!(ms(87.44), "87.4 ms");
        assert_eq!(ms(1_250.4), "1,250 ms");
        assert_eq!(signed_percent(0.125), "+12.5 %");
        assert_eq!(signed_percent(-0.03), "-3.0 %");
        assert_eq!(signed_percent(0.0001), "0.0 %");
        assert_eq!(or_dash(None::<f64>, ms), "–");
    }
}
