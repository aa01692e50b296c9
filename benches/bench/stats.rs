//! Statistics over runs, and the rows of the report they become.

pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Nearest-rank percentile of unsorted samples.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x.abs() >= 100.0 {
        format!("{:.0}", x)
    } else if x.abs() >= 10.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    }
}

pub fn spread(v: &[f64]) -> String {
    if v.len() < 2 {
        return "1 run".into();
    }
    let (lo, hi) = min_max(v);
    format!("{}–{} ({} runs)", fmt_num(lo), fmt_num(hi), v.len())
}

/// "yes" or "**no**".
pub fn yes_no(met: bool) -> String {
    if met { "yes" } else { "**no**" }.to_string()
}

/// One line of the report's table.
#[derive(Default, Clone)]
pub struct Row {
    pub id: String,
    pub measure: String,
    pub variant: String,
    pub median: String,
    pub spread: String,
    pub ratio: String,
    pub goal: String,
    pub met: String,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// (figure name, value) pairs the smoke check looks at.
    pub figures: Vec<(String, f64)>,
}

impl Report {
    /// A row whose median and spread are those of `runs`; the median becomes a figure the smoke check looks at.
    pub fn row(&mut self, id: &str, measure: &str, variant: &str, unit: &str, runs: &[f64]) -> Row {
        let m = median(runs);
        self.figures.push((format!("{id} {variant}"), m));
        Row {
            id: id.into(),
            measure: measure.into(),
            variant: variant.into(),
            median: format!("{} {unit}", fmt_num(m)),
            spread: spread(runs),
            ..Default::default()
        }
    }
    /// A row of one value (a percentile), with no spread.
    pub fn single(&mut self, id: &str, measure: &str, variant: &str, unit: &str, value: f64) -> Row {
        Row { spread: String::new(), ..self.row(id, measure, variant, unit, &[value]) }
    }
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }
    /// Pushes a row whose ratio column is the baseline's own "1.00x".
    pub fn push_baseline(&mut self, row: Row) {
        self.rows.push(Row { ratio: "1.00x".into(), ..row });
    }
    /// Pushes a row with its ratio to `base` (no goal).
    pub fn push_ratio(&mut self, row: Row, lib: &[f64], base: &[f64]) {
        self.rows.push(Row { ratio: ratio_cell(lib, base, None).0, ..row });
    }
    /// Pushes a row with its ratio to `base` and whether the goal `ratio >= goal` holds.
    pub fn push_goal(&mut self, row: Row, lib: &[f64], base: &[f64], goal: f64, goal_text: &str) {
        let (ratio, met, _) = ratio_cell(lib, base, Some(goal));
        self.rows.push(Row { ratio, met, goal: goal_text.into(), ..row });
    }
}

/// The ratio cell and whether a goal `ratio >= goal` holds: median of the per-round ratios, and their spread.
pub fn ratio_cell(lib: &[f64], base: &[f64], goal: Option<f64>) -> (String, String, f64) {
    let per_round: Vec<f64> = lib.iter().zip(base).map(|(a, b)| a / b).collect();
    let m = median(&per_round);
    let cell = if per_round.len() > 1 {
        let (lo, hi) = min_max(&per_round);
        format!("{:.2}x ({:.2}–{:.2})", m, lo, hi)
    } else {
        format!("{:.2}x", m)
    };
    let met = match goal {
        Some(g) if m.is_finite() => yes_no(m >= g),
        Some(_) => "n/a".into(),
        None => String::new(),
    };
    (cell, met, m)
}
