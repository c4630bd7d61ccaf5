//! Initialising, starting and stopping one private cluster.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{bail, Context};

use crate::binaries::Binaries;
use crate::system_user::{can_reach, command_as, create_searchable, hand_over, server_user, SystemUser};

/// How the cluster should run.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where the cluster's files live (created if missing, kept between runs).
    pub data_dir: PathBuf,
    /// Turn off fsync and synchronous commit: for throw-away test clusters only.
    pub durability_off: bool,
    /// `max_connections` of the server.
    pub max_connections: u32,
}

impl ClusterOptions {
    /// Durable settings suitable for `switchboard dev` and the benchmark.
    pub fn durable(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), durability_off: false, max_connections: 300 }
    }

    /// Fast settings for a test run (`fsync=off`).
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), durability_off: true, max_connections: 500 }
    }
}

/// A running cluster, reachable over TCP on loopback as the `postgres` superuser (trust auth).
#[derive(Debug, Clone)]
pub struct Cluster {
    binaries: Binaries,
    data_dir: PathBuf,
    port: u16,
    user: Option<SystemUser>,
}

const SUPERUSER: &str = "postgres";
const SETTINGS_FILE: &str = "switchboard.conf";

impl Cluster {
    /// Initialises the cluster if its data directory is new, starts it unless it already runs,
    /// and returns it. Safe to call from many processes at once.
    pub fn ensure_running(options: &ClusterOptions) -> anyhow::Result<Self> {
        let binaries = Binaries::locate()?;
        let user = server_user()?;
        let data_dir = match &user {
            Some(server) => reachable_data_dir(&absolute(&options.data_dir)?, server)?,
            None => absolute(&options.data_dir)?,
        };
        let parent = data_dir.parent().context("the data directory has no parent")?;
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let _lock = lock(&data_dir.with_extension("lock"))?;

        let mut cluster = Self { binaries, data_dir, port: 0, user };
        if !cluster.data_dir.join("PG_VERSION").is_file() {
            cluster.initialise()?;
        }
        if let Some(port) = cluster.running_port()? {
            cluster.port = port;
            return Ok(cluster);
        }
        cluster.port = free_port()?;
        cluster.write_settings(options)?;
        cluster.start()?;
        Ok(cluster)
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A connection URL for `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The server's binaries (for `pgbench` and friends).
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// Stops the server (fast shutdown: open sessions are ended, data is kept).
    pub fn stop(&self) -> anyhow::Result<()> {
        let output = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])?;
        if !output.status.success() && self.running_port()?.is_some() {
            bail!("pg_ctl stop failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(())
    }

    fn initialise(&self) -> anyhow::Result<()> {
        tracing::info!(data_dir = %self.data_dir.display(), "initialising a private PostgreSQL cluster");
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        hand_over(&self.data_dir, self.user.as_ref())?;
        let output = command_as(&self.binaries.path("initdb"), self.user.as_ref())
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .context("running initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed for {} (the server user must be able to reach this folder): {}",
                self.data_dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let conf = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).context("reading postgresql.conf")?;
        text.push_str(&format!("\ninclude_if_exists = '{SETTINGS_FILE}'\n"));
        std::fs::write(&conf, text).context("writing postgresql.conf")?;
        Ok(())
    }

    fn write_settings(&self, options: &ClusterOptions) -> anyhow::Result<()> {
        let mut settings = format!(
            "# Written by Switchboard on every start.\n\
             port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             max_connections = {}\nshared_buffers = '128MB'\n",
            self.port, options.max_connections
        );
        if options.durability_off {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.data_dir.join(SETTINGS_FILE);
        std::fs::write(&path, settings).with_context(|| format!("writing {}", path.display()))?;
        hand_over(&path, self.user.as_ref())
    }

    fn start(&self) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "starting the private PostgreSQL cluster");
        let log = self.data_dir.join("server.log");
        let output = self.pg_ctl_with(&["start", "-w", "-t", "60", "-l"], Some(&log))?;
        if !output.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            bail!(
                "PostgreSQL did not start: {}\n{}",
                String::from_utf8_lossy(&output.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// The port of a server already running on this data directory, if any.
    fn running_port(&self) -> anyhow::Result<Option<u16>> {
        let status = self.pg_ctl(&["status"])?;
        if !status.status.success() {
            return Ok(None);
        }
        let settings = std::fs::read_to_string(self.data_dir.join(SETTINGS_FILE)).unwrap_or_default();
        let port = settings
            .lines()
            .find_map(|line| line.strip_prefix("port = "))
            .and_then(|value| value.trim().parse().ok());
        match port {
            Some(port) => Ok(Some(port)),
            None => bail!("a server runs on {} but its port is unknown", self.data_dir.display()),
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.pg_ctl_with(args, None)
    }

    fn pg_ctl_with(&self, args: &[&str], last: Option<&Path>) -> anyhow::Result<Output> {
        let mut command = command_as(&self.binaries.path("pg_ctl"), self.user.as_ref());
        command.arg("-D").arg(&self.data_dir).args(args);
        if let Some(last) = last {
            command.arg(last);
        }
        // pg_ctl start leaves the server holding our stdout/stderr unless they are detached.
        command.stdin(std::process::Stdio::null());
        command.output().context("running pg_ctl")
    }
}

/// Where the cluster for `wanted` lives when the server user may not reach it (a clone under
/// `/root`, run as root): beside nothing of the caller's, in a folder of its own under
/// [`RELOCATED_ROOT`] named after `wanted`, so each requested folder keeps its own cluster between
/// runs. `wanted` becomes a symbolic link to it, so the caller (and `scripts/sqlx-prepare`) still
/// finds the cluster where it asked for it.
const RELOCATED_ROOT: &str = "/var/tmp/switchboard-postgres";

fn reachable_data_dir(wanted: &Path, server: &SystemUser) -> anyhow::Result<PathBuf> {
    let parent = wanted.parent().context("the data directory has no parent")?;
    if can_reach(wanted, server) {
        create_searchable(parent)?;
        return Ok(wanted.to_owned());
    }
    if let Ok(target) = std::fs::read_link(wanted) {
        return Ok(target);
    }
    let name = wanted.file_name().and_then(|n| n.to_str()).unwrap_or("cluster");
    let relocated = Path::new(RELOCATED_ROOT).join(format!("{:016x}-{name}", path_hash(wanted)));
    create_searchable(Path::new(RELOCATED_ROOT))?;
    tracing::info!(
        wanted = %wanted.display(),
        data_dir = %relocated.display(),
        server_user = %server.name,
        "the server user cannot enter the requested folder: the cluster lives elsewhere, linked from it"
    );
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    // Concurrent starters (parallel tests) may race to link: whoever loses finds the same link.
    match std::os::unix::fs::symlink(&relocated, wanted) {
        Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(error)
                .with_context(|| format!("linking {} to {}", wanted.display(), relocated.display()));
        }
        _ => {}
    }
    Ok(relocated)
}

/// FNV-1a of the path's bytes: stable across builds and Rust versions (the std hasher is not).
fn path_hash(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    Ok(std::env::current_dir().context("reading the current directory")?.join(path))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Holds an exclusive lock on `path` until dropped.
fn lock(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    file.lock().with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}
