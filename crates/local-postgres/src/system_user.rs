//! Who the server runs as: the caller, or an unprivileged system user when the caller is root.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// An unprivileged account to run PostgreSQL as (only used when we are root).
#[derive(Debug, Clone)]
pub(crate) struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// `None` when the current process is not root (the server then runs as the caller).
pub(crate) fn server_user() -> anyhow::Result<Option<SystemUser>> {
    let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for wanted in ["postgres", "nobody"] {
        if let Some(user) = passwd.lines().find_map(|line| parse_passwd_line(line, wanted)) {
            return Ok(Some(user));
        }
    }
    bail!("running as root, but neither a `postgres` nor a `nobody` user exists to run PostgreSQL as")
}

fn parse_passwd_line(line: &str, wanted: &str) -> Option<SystemUser> {
    let mut fields = line.split(':');
    let name = fields.next()?;
    if name != wanted {
        return None;
    }
    let _password = fields.next()?;
    let uid = fields.next()?.parse().ok()?;
    let gid = fields.next()?.parse().ok()?;
    Some(SystemUser { name: name.to_owned(), uid, gid })
}

/// A command that runs as `user` when given (we are root), else as the caller.
pub(crate) fn command_as(program: &Path, user: Option<&SystemUser>) -> Command {
    let mut command = Command::new(program);
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
        // The server user's own home, not root's, so nothing tries to read /root.
        command.env("HOME", "/tmp").env("USER", &user.name);
    }
    command
}

/// Gives a directory (and nothing above it) to the server user.
pub(crate) fn hand_over(dir: &Path, user: Option<&SystemUser>) -> anyhow::Result<()> {
    if let Some(user) = user {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("giving {} to user {}", dir.display(), user.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_parse_to_the_wanted_user_only() {
        let line = "postgres:x:105:111:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash";
        let user = parse_passwd_line(line, "postgres").expect("parses");
        assert_eq!((user.uid, user.gid), (105, 111));
        assert!(parse_passwd_line(line, "nobody").is_none());
        assert!(parse_passwd_line("broken", "broken").is_none());
    }
}
