//! Where the machine's time went during a measured window: CPU by process group (PostgreSQL, the
//! Switchboard servers, this process — the load client and the simulator), idle and stolen time
//! (`/proc/stat`: time the hypervisor gave to other guests), and the servers' batched statements
//! (their `/metrics`). Every throughput figure carries one, so a figure that moved between runs can
//! be told apart from a machine that was busier.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::environment::Stack;

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on every Linux this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// What a window measured.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub scenario: String,
    pub seconds: f64,
    /// Cores busy on average, by group: `postgres`, `servers`, `client+simulator` (empty when the
    /// window's processes were too short-lived to count: pgbench's connections).
    pub cores: Vec<(String, f64)>,
    /// Cores busy on average, the whole machine.
    pub busy_cores: f64,
    /// Share of all CPU time that was idle, and that the hypervisor stole.
    pub idle_percent: f64,
    pub steal_percent: f64,
    /// What one unit of work (an admission, a webhook) cost each group, in CPU microseconds.
    pub unit: Option<String>,
    pub micros_per_unit: Vec<(String, f64)>,
    /// The servers' batched statements in the window.
    pub batches: Vec<BatchStat>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchStat {
    pub kind: String,
    pub statements: f64,
    pub mean_size: f64,
    pub mean_ms: f64,
}

/// A window being measured.
pub struct Window {
    /// Whether to count CPU by process group (processes alive at both ends of the window).
    by_group: bool,
    started: Instant,
    system: SystemTicks,
    groups: HashMap<&'static str, f64>,
    batches: HashMap<String, BatchTotals>,
    server_pids: Vec<u32>,
}

impl Window {
    /// A window counting CPU by process group: PostgreSQL's backends, the stack's servers, this
    /// process (a process that starts and exits inside the window is not seen), and the stack's
    /// batched statements.
    pub async fn start(stack: &Stack) -> Self {
        let server_pids = stack.servers.iter().map(|server| server.pid()).collect();
        let batches = batch_totals(stack).await;
        Self::starting(true, server_pids, batches)
    }

    /// A window counting only the machine's busy, idle and stolen time (for pgbench, whose
    /// connections come and go within it).
    pub async fn machine_only() -> Self {
        Self::starting(false, Vec::new(), HashMap::new())
    }

    fn starting(by_group: bool, server_pids: Vec<u32>, batches: HashMap<String, BatchTotals>) -> Self {
        Self {
            by_group,
            started: Instant::now(),
            system: SystemTicks::read(),
            groups: if by_group { group_ticks(&server_pids) } else { HashMap::new() },
            batches,
            server_pids,
        }
    }

    /// The profile of the window so far; `units` of work (named `unit`) were done in it.
    pub async fn finish(self, scenario: &str, stack: Option<&Stack>, units: Option<(f64, &str)>) -> Profile {
        let seconds = self.started.elapsed().as_secs_f64();
        let system = SystemTicks::read().minus(&self.system);
        let groups = if self.by_group { group_ticks(&self.server_pids) } else { HashMap::new() };
        let mut cores = Vec::new();
        let mut micros_per_unit = Vec::new();
        for group in GROUPS.iter().filter(|_| self.by_group) {
            let ticks =
                groups.get(group).copied().unwrap_or(0.0) - self.groups.get(group).copied().unwrap_or(0.0);
            let cpu_seconds = ticks / TICKS_PER_SECOND;
            cores.push(((*group).to_owned(), cpu_seconds / seconds));
            if let Some((count, _)) = units.filter(|(count, _)| *count > 0.0) {
                micros_per_unit.push(((*group).to_owned(), cpu_seconds * 1e6 / count));
            }
        }
        let batches = match stack {
            Some(stack) => {
                let after = batch_totals(stack).await;
                let mut stats: Vec<BatchStat> = after
                    .into_iter()
                    .filter_map(|(kind, totals)| {
                        let before = self.batches.get(&kind).copied().unwrap_or_default();
                        let statements = totals.count - before.count;
                        (statements > 0.0).then(|| BatchStat {
                            mean_size: (totals.size_sum - before.size_sum) / statements,
                            mean_ms: (totals.seconds_sum - before.seconds_sum) * 1000.0 / statements,
                            kind,
                            statements,
                        })
                    })
                    .collect();
                stats.sort_by(|a, b| a.kind.cmp(&b.kind));
                stats
            }
            None => Vec::new(),
        };
        Profile {
            scenario: scenario.to_owned(),
            seconds,
            cores,
            busy_cores: system.busy_cores(seconds),
            idle_percent: system.percent(system.idle),
            steal_percent: system.percent(system.steal),
            unit: units.map(|(_, unit)| unit.to_owned()),
            micros_per_unit,
            batches,
        }
    }
}

const GROUPS: [&str; 3] = ["postgres", "servers", "client+simulator"];

/// CPU ticks used so far by each group's live processes.
fn group_ticks(server_pids: &[u32]) -> HashMap<&'static str, f64> {
    let own = std::process::id();
    let mut ticks = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return ticks };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Some((comm, used)) = process_ticks(pid) else { continue };
        let group = if pid == own {
            "client+simulator"
        } else if server_pids.contains(&pid) {
            "servers"
        } else if comm == "postgres" {
            "postgres"
        } else {
            continue;
        };
        *ticks.entry(group).or_insert(0.0) += used;
    }
    ticks
}

/// A process's name and its user + system ticks, from `/proc/<pid>/stat`.
fn process_ticks(pid: u32) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat.get(open + 1..close)?.to_owned();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The machine's CPU ticks by kind (`/proc/stat`, first line).
#[derive(Debug, Clone, Copy, Default)]
struct SystemTicks {
    total: f64,
    idle: f64,
    steal: f64,
}

impl SystemTicks {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = stat.lines().next() else { return Self::default() };
        // cpu user nice system idle iowait irq softirq steal guest guest_nice
        let values: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        let at = |n: usize| values.get(n).copied().unwrap_or(0.0);
        // guest time is already counted in user time.
        let total = (0..8).map(at).sum();
        Self { total, idle: at(3) + at(4), steal: at(7) }
    }

    fn minus(&self, earlier: &Self) -> Self {
        Self {
            total: self.total - earlier.total,
            idle: self.idle - earlier.idle,
            steal: self.steal - earlier.steal,
        }
    }

    /// Cores busy on average over `seconds` (neither idle nor stolen).
    fn busy_cores(&self, seconds: f64) -> f64 {
        (self.total - self.idle - self.steal) / TICKS_PER_SECOND / seconds
    }

    fn percent(&self, part: f64) -> f64 {
        if self.total > 0.0 {
            100.0 * part / self.total
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct BatchTotals {
    count: f64,
    size_sum: f64,
    seconds_sum: f64,
}

/// The servers' batch histograms so far, summed over servers, by kind.
async fn batch_totals(stack: &Stack) -> HashMap<String, BatchTotals> {
    let mut totals: HashMap<String, BatchTotals> = HashMap::new();
    for server in &stack.servers {
        let Ok(response) = stack.http.get(format!("{}/metrics", server.base_url)).send().await else {
            continue;
        };
        let Ok(text) = response.text().await else { continue };
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            let Some(kind) = name.split("kind=\"").nth(1).and_then(|rest| rest.split('"').next()) else {
                continue;
            };
            let entry = totals.entry(kind.to_owned()).or_default();
            if name.starts_with("switchboard_db_batch_size_count") {
                entry.count += value;
            } else if name.starts_with("switchboard_db_batch_size_sum") {
                entry.size_sum += value;
            } else if name.starts_with("switchboard_db_batch_seconds_sum") {
                entry.seconds_sum += value;
            }
        }
    }
    totals
}

/// The profiles as a markdown section.
pub fn markdown(profiles: &[Profile]) -> String {
    if profiles.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Where the time went\n\nCPU by process group in each measured window (cores busy on average; \
         2 cores in all), and CPU time per unit of work. Steal is time the hypervisor gave to other \
         guests: this machine's cores were not ours alone.\n\n\
         | window | seconds | busy (all) | PostgreSQL | servers | client + simulator | idle | steal | CPU per unit (PostgreSQL / servers / client+sim) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for p in profiles {
        let core = |n: usize| p.cores.get(n).map_or_else(|| "—".to_owned(), |c| format!("{:.2}", c.1));
        let per_unit = match &p.unit {
            Some(unit) if !p.micros_per_unit.is_empty() => {
                let cells: Vec<String> = p.micros_per_unit.iter().map(|(_, us)| format!("{us:.0}")).collect();
                format!("{} µs per {unit}", cells.join(" / "))
            }
            _ => "—".into(),
        };
        out.push_str(&format!(
            "| {} | {:.1} | {:.2} | {} | {} | {} | {:.0}% | {:.0}% | {} |\n",
            p.scenario,
            p.seconds,
            p.busy_cores,
            core(0),
            core(1),
            core(2),
            p.idle_percent,
            p.steal_percent,
            per_unit
        ));
    }
    let batched: Vec<&Profile> = profiles.iter().filter(|p| !p.batches.is_empty()).collect();
    if !batched.is_empty() {
        out.push_str(
            "\nBatched statements (group commit) in the same windows: statements, mean requests per \
             statement, mean milliseconds per statement (with its commit).\n\n\
             | window | kind | statements | requests each | ms each |\n|---|---|---|---|---|\n",
        );
        for p in batched {
            for b in &p.batches {
                out.push_str(&format!(
                    "| {} | {} | {:.0} | {:.1} | {:.2} |\n",
                    p.scenario, b.kind, b.statements, b.mean_size, b.mean_ms
                ));
            }
        }
    }
    out
}
