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
        // Somewhere the server user may be: initdb and pg_ctl fail in a working directory they
        // cannot enter (a clone in /root), and nothing should try to read root's home.
        command.current_dir("/").env("HOME", "/tmp").env("USER", &user.name);
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

/// Whether `user` may pass through every folder above `path` (search permission on each; only the
/// user's primary group is considered, so a doubtful case counts as unreachable). Folders not yet
/// created count as reachable: they are created searchable (see [`create_searchable`]).
pub(crate) fn can_reach(path: &Path, user: &SystemUser) -> bool {
    path.ancestors().skip(1).all(|dir| match std::fs::metadata(dir) {
        Ok(meta) => {
            let mode = meta.mode();
            (meta.uid() == user.uid && mode & 0o100 != 0)
                || (meta.gid() == user.gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
        }
        Err(_) => true,
    })
}

/// Creates `dir` and its missing parents searchable by everyone (0755), whatever the umask.
pub(crate) fn create_searchable(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    for folder in missing.into_iter().rev() {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(folder)
            .or_else(|e| if folder.is_dir() { Ok(()) } else { Err(e) })
            .with_context(|| format!("creating {}", folder.display()))?;
        std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .with_context(|| format!("opening {} to the server user", folder.display()))?;
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

    #[test]
    fn a_folder_only_its_owner_may_enter_is_unreachable_for_another_user() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("reach-{}", std::process::id()));
        let private = base.join("private");
        std::fs::create_dir_all(&private).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let meta = std::fs::metadata(&private).unwrap();
        let stranger = SystemUser { name: "stranger".into(), uid: meta.uid() + 1, gid: meta.gid() + 1 };
        let owner = SystemUser { name: "owner".into(), uid: meta.uid(), gid: meta.gid() };
        assert!(!can_reach(&private.join("data"), &stranger));
        assert!(can_reach(&private.join("data"), &owner));
        assert!(can_reach(&base.join("open").join("data"), &stranger), "a missing folder is created open");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
