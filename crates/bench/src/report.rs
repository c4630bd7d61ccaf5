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

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub quick: bool,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(self)?)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
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
