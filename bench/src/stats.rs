//! Figures and how they are printed.

use std::time::Duration;

/// Median and 99th percentile of a set of durations.
pub fn percentiles(mut d: Vec<Duration>) -> (Duration, Duration) {
    assert!(!d.is_empty(), "no samples");
    d.sort();
    let at = |q: f64| d[((d.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

pub fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One printed line: what was measured, the figure, the target and whether it is met.
pub struct Row {
    pub what: String,
    pub value: String,
    pub target: String,
    pub verdict: String,
}

impl Row {
    pub fn new(what: &str, value: String, target: &str, met: Option<bool>) -> Row {
        Row {
            what: what.into(),
            value,
            target: target.into(),
            verdict: match met {
                Some(true) => "met".into(),
                Some(false) => "MISSED".into(),
                None => String::new(),
            },
        }
    }
}

pub fn print(title: &str, rows: &[Row]) {
    let w = |f: fn(&Row) -> &String, head: &str| {
        rows.iter()
            .map(|r| f(r).len())
            .max()
            .unwrap_or(0)
            .max(head.len())
    };
    let (a, b, c) = (
        w(|r| &r.what, "figure"),
        w(|r| &r.value, "value"),
        w(|r| &r.target, "target"),
    );
    println!("\n== {title}");
    println!(
        "{:<a$}  {:>b$}  {:<c$}  result",
        "figure", "value", "target"
    );
    for r in rows {
        println!(
            "{:<a$}  {:>b$}  {:<c$}  {}",
            r.what, r.value, r.target, r.verdict
        );
    }
}
