//! The classes table: what one unit of each job class's work costs on this machine, run by the
//! class's own engine outside the grid, in release builds.
//!
//! - `train` (`classes/train.rs`): one epoch of `examples/wasm/mnist-train` in the Wasm sandbox,
//!   fresh and resumed, through the `run_wasm` example of sgl-sandbox.
//! - `image` (`classes/image.rs`): terrain images per second through `sgl-image bench`.
//! - `render` (`classes/render.rs`): seconds per frame of `examples/render/scene.blend` through
//!   the `render_timing` example of sgl-media, directly and in the native sandbox.
//!
//! Each class checks for its engine and data first; when one is missing its row says so and
//! the others still run. A class whose runs fail gets one row with the error.

mod image;
mod render;
mod train;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{machine, target_dir, update_section};
use crate::command::{cargo, run};

/// How many times each measured command runs.
const RUNS: usize = 5;

/// One row of the table.
pub(super) struct Row {
    class: &'static str,
    what: String,
    /// The command the figure comes from; `None` for a figure of the runs of the row above, or a
    /// row that was not measured.
    command: Option<String>,
    figure: Figure,
}

/// A row's figure.
pub(super) enum Figure {
    /// One value per run, shown as min / median / max.
    Spread { values: Vec<f64>, unit: &'static str, decimals: usize },
    /// The value every run gave, exactly.
    Exact { value: String, unit: &'static str },
    /// Not measured, and why.
    Note(String),
}

impl Figure {
    /// Each run's value, or their spread when runs differ, formatted with thousands separators.
    fn same_in_every_run(values: &[u64], unit: &'static str) -> Self {
        match values {
            [first, rest @ ..] if rest.iter().all(|value| value == first) => {
                Self::Exact { value: format!("{} (every run)", thousands(*first)), unit }
            }
            _ => Self::Spread { values: values.iter().map(|&value| value as f64).collect(), unit, decimals: 0 },
        }
    }

    /// The figure and unit cells.
    fn cells(&self) -> (String, &'static str) {
        match self {
            Self::Spread { values, unit, decimals } => {
                let (min, median, max) = spread(values);
                (format!("{min:.decimals$} / {median:.decimals$} / {max:.decimals$}"), unit)
            }
            Self::Exact { value, unit } => (value.clone(), unit),
            Self::Note(note) => (note.clone(), "–"),
        }
    }
}

impl Row {
    /// A figure measured by running `command`.
    pub(super) fn new(
        class: &'static str,
        what: impl Into<String>,
        command: impl Into<String>,
        figure: Figure,
    ) -> Self {
        Self { class, what: what.into(), command: Some(command.into()), figure }
    }

    /// Another figure of the runs of the row above.
    pub(super) fn same_runs(class: &'static str, what: impl Into<String>, figure: Figure) -> Self {
        Self { class, what: what.into(), command: None, figure }
    }

    /// A row that was not measured, and why.
    pub(super) fn note(class: &'static str, what: impl Into<String>, note: impl Into<String>) -> Self {
        Self { class, what: what.into(), command: None, figure: Figure::Note(note.into()) }
    }
}

/// Where the release binaries go, and a scratch folder for the jobs' directories.
pub(super) struct Bench {
    release: PathBuf,
    scratch: PathBuf,
}

impl Bench {
    fn new() -> anyhow::Result<Self> {
        let target = PathBuf::from(target_dir()?);
        let scratch = target.join("bench-classes");
        if scratch.exists() {
            fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
        }
        fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        Ok(Self { release: target.join("release"), scratch })
    }

    /// Builds `package`'s example `name` in release and returns its path.
    pub(super) fn example(&self, package: &str, name: &str) -> anyhow::Result<PathBuf> {
        run(cargo().args(["build", "--release", "--locked", "-p", package, "--example", name]))?;
        Ok(self.release.join("examples").join(name))
    }

    /// Builds `package`'s binary `name` in release and returns its path.
    pub(super) fn binary(&self, package: &str, name: &str) -> anyhow::Result<PathBuf> {
        run(cargo().args(["build", "--release", "--locked", "-p", package, "--bin", name]))?;
        Ok(self.release.join(name))
    }

    /// A new empty directory `name` in the scratch folder (emptied if it was there).
    pub(super) fn fresh_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.scratch.join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }
}

/// What one class measured: its rows and a sentence or two about the runs (results, checks).
pub(super) type Measured = anyhow::Result<(Vec<Row>, Vec<String>)>;

/// A class's name and what measures it.
type Class = (&'static str, fn(&Bench) -> Measured);

/// Runs the three classes and updates the classes section of BENCHMARKS.md.
pub(crate) fn run_part() -> anyhow::Result<()> {
    let bench = Bench::new()?;
    let load_before = load_average();
    let classes: [Class; 3] = [("train", train::measure), ("image", image::measure), ("render", render::measure)];
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    for (class, measure) in classes {
        match measure(&bench) {
            Ok((class_rows, class_notes)) => {
                rows.extend(class_rows);
                notes.extend(class_notes);
            }
            Err(error) => {
                eprintln!("bench classes: {class} failed: {error:#}");
                let first_line = format!("{error:#}").lines().next().unwrap_or_default().to_owned();
                rows.push(Row::note(class, "–", format!("failed: {first_line}")));
            }
        }
    }
    let table = table(&rows);
    eprint!("{table}");
    let section = format!(
        "Command: `cargo xtask bench classes`. Release builds; {RUNS} runs of each command, alternating between \
         the settings of a class; figures are min / median / max over the runs. The commands are what xtask runs \
         (it runs the built binaries directly); `IN` and `OUT` are a job's input and output directories. Load \
         average (1 min) {load_before} before and {} after.\n{}\n\n{table}\n{}\n",
        load_average(),
        machine()?,
        notes.iter().map(|note| format!("- {note}\n")).collect::<String>(),
    );
    update_section("classes", &section)
}

fn table(rows: &[Row]) -> String {
    let mut table = String::from("| class | what | command | min / median / max | unit |\n|---|---|---|---:|---|\n");
    for row in rows {
        let (figure, unit) = row.figure.cells();
        let command = match (&row.command, &row.figure) {
            (Some(command), _) => format!("`{command}`"),
            (None, Figure::Note(_)) => "–".to_owned(),
            (None, _) => "the runs above".to_owned(),
        };
        let cells = [row.class, &row.what, &command, &figure, unit].map(|cell| cell.replace('|', "\\|"));
        table.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    table
}

/// The smallest, median and largest value (the median of an even count is the mean of the middle
/// two); NaN for none.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    (sorted[0], median, sorted[n - 1])
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// "1 thread", "2 threads".
pub(super) fn threads(n: u64) -> String {
    if n == 1 { "1 thread".to_owned() } else { format!("{n} threads") }
}

/// The 1-minute load average, as `/proc/loadavg` gives it.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The regular file an environment variable names, if it is set and names one.
pub(super) fn env_file(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).map(PathBuf::from).filter(|path| Path::new(path).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_min_median_max_of_odd_and_even_counts() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (1.0, 2.5, 4.0));
        assert!(spread(&[]).1.is_nan());
    }

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(715_024_290), "715,024,290");
    }

    #[test]
    fn equal_runs_are_one_exact_figure_and_unequal_runs_a_spread() {
        let (exact, unit) = Figure::same_in_every_run(&[5, 5, 5], "fuel").cells();
        assert_eq!((exact.as_str(), unit), ("5 (every run)", "fuel"));
        let (spread, _) = Figure::same_in_every_run(&[5, 7, 6], "fuel").cells();
        assert_eq!(spread, "5 / 6 / 7");
    }

    #[test]
    fn a_table_row_quotes_its_command_a_derived_row_points_up_and_a_note_has_no_unit() {
        let rows = [
            Row::new("train", "epoch 1", "run it", Figure::Spread { values: vec![0.5], unit: "s", decimals: 2 }),
            Row::same_runs("train", "fuel", Figure::Exact { value: "7".to_owned(), unit: "fuel units" }),
            Row::note("image", "–", "skipped: run `a | b`"),
        ];
        let table = table(&rows);
        assert!(table.contains("| train | epoch 1 | `run it` | 0.50 / 0.50 / 0.50 | s |"), "{table}");
        assert!(table.contains("| train | fuel | the runs above | 7 | fuel units |"), "{table}");
        assert!(table.contains("| image | – | – | skipped: run `a \\| b` | – |"), "a pipe is escaped: {table}");
    }
}
