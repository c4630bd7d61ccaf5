//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The folder holding the server binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    bin_dir: PathBuf,
}

impl Binaries {
    /// Looks in `SWITCHBOARD_PG_BIN`, then next to an `initdb` on `PATH`, then in the newest
    /// `/usr/lib/postgresql/<version>/bin` (Debian's layout, where `initdb` is not on `PATH`).
    pub fn locate() -> anyhow::Result<Self> {
        if let Some(dir) = std::env::var_os("SWITCHBOARD_PG_BIN") {
            let dir = PathBuf::from(dir);
            if has_server(&dir) {
                return Ok(Self { bin_dir: dir });
            }
            bail!("SWITCHBOARD_PG_BIN={} holds no initdb/pg_ctl", dir.display());
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if has_server(&dir) {
                    return Ok(Self { bin_dir: dir });
                }
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .filter(|(_, dir)| has_server(dir))
            .collect();
        versions.sort();
        match versions.pop() {
            Some((_, bin_dir)) => Ok(Self { bin_dir }),
            None => bail!(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in \
                 /usr/lib/postgresql/*/bin; install them (e.g. `apt-get install -y postgresql`) \
                 or set SWITCHBOARD_PG_BIN, or configure an existing database with DATABASE_URL"
            ),
        }
    }

    /// The path of one binary, e.g. `pg_ctl`: next to `initdb`, else on `PATH`, else in Debian's
    /// `/usr/lib/postgresql/<version>/bin` (where `pgbench` lives when only wrappers are on PATH).
    pub fn path(&self, name: &str) -> PathBuf {
        let beside = self.bin_dir.join(name);
        if beside.is_file() {
            return beside;
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file());
        let debian = || {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path().join("bin").join(name))
                .filter(|candidate| candidate.is_file())
                .collect();
            found.sort();
            found.pop()
        };
        on_path.or_else(debian).unwrap_or(beside)
    }

    /// The major version of the server, from `pg_ctl --version`.
    pub fn version(&self) -> anyhow::Result<String> {
        let out = std::process::Command::new(self.path("pg_ctl"))
            .arg("--version")
            .output()
            .context("running pg_ctl --version")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}
