//! The benchmark's output: every figure beside the baseline measured in the same run, written as
//! `report.json` and `report.md`.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// The same-run reference this figure is compared with, and what it is.
    pub baseline: f64,
    pub baseline_name: String,
    /// `value / baseline`.
    pub ratio: f64,
    /// The target, as text (e.g. `p99 < 50 ms`).
    pub target: String,
    pub met: bool,
}

/// A measured curve: a table, and an SVG chart beside the report.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub name: String,
    /// The chart's file name (in the report's directory).
    pub file: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub series: Vec<String>,
    /// One row per x: the x value, then one value per series.
    pub points: Vec<(f64, Vec<f64>)>,
    /// What the curve shows against its target.
    pub verdict: String,
}

impl Curve {
    fn svg(&self) -> String {
        let series: Vec<crate::chart::Series<'_>> = self
            .series
            .iter()
            .enumerate()
            .map(|(n, name)| crate::chart::Series {
                name,
                points: self.points.iter().map(|(x, values)| (*x, values[n])).collect(),
            })
            .collect();
        crate::chart::line_chart(&self.name, &self.x_label, &self.y_label, self.log_x, &series)
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub quick: bool,
    pub figures: Vec<Figure>,
    pub curves: Vec<Curve>,
    /// `EXPLAIN (ANALYZE, BUFFERS)` of hot statements on the large data set: (statement, plan).
    pub plans: Vec<(String, String)>,
    /// Where the time went in each measured window (CPU by process group, idle, steal, batches).
    pub profiles: Vec<crate::profile::Profile>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(self)?)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        for curve in &self.curves {
            std::fs::write(dir.join(&curve.file), curve.svg())?;
        }
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Switchboard benchmark\n\nMachine: {}{}\n\n",
            self.machine,
            if self.quick { " (quick run)" } else { "" }
        );
        out.push_str(
            "| figure | value | baseline (same run) | ratio | target | met |\n|---|---|---|---|---|---|\n",
        );
        for f in &self.figures {
            out.push_str(&format!(
                "| {} | {:.2} {} | {:.2} ({}) | {:.2} | {} | {} |\n",
                f.name,
                f.value,
                f.unit,
                f.baseline,
                f.baseline_name,
                f.ratio,
                f.target,
                if f.met { "yes" } else { "**no**" }
            ));
        }
        for curve in &self.curves {
            out.push_str(&format!("\n## {}\n\n![{}]({})\n\n", curve.name, curve.name, curve.file));
            out.push_str(&format!("| {} | {} |\n", curve.x_label, curve.series.join(" | ")));
            out.push_str(&format!("|---|{}\n", "---|".repeat(curve.series.len())));
            for (x, values) in &curve.points {
                let cells: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
                out.push_str(&format!("| {x} | {} |\n", cells.join(" | ")));
            }
            out.push_str(&format!("\n{}\n", curve.verdict));
        }
        out.push_str(&crate::profile::markdown(&self.profiles));
        if !self.plans.is_empty() {
            out.push_str("\n## Query plans on the large data set\n");
            for (name, plan) in &self.plans {
                out.push_str(&format!("\n### {name}\n\n```\n{plan}\n```\n"));
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\n## Notes\n\n");
            for note in &self.notes {
                out.push_str(&format!("- {note}\n"));
            }
        }
        out
    }
}

/// The `p`-th percentile (0..=100) of `samples` (sorted in place), nearest-rank.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
    samples[rank.min(samples.len()) - 1]
}

/// What this machine is, for the report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{} GiB", kb / 1024 / 1024))
        .unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), {memory}")
}
