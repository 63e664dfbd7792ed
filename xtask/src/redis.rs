//! Finding, and if necessary installing, `redis-server` for the Redis tests.
//!
//! The Redis-backed tests start their own `redis-server` processes, so all
//! that is needed is the binary; system services are never touched. When the
//! binary is missing and we run as root on a machine with `apt-get`, it is
//! installed with `apt-get`; otherwise a single line explains what to run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Failure, run_command};

/// Name of the Redis server binary.
const REDIS_SERVER: &str = "redis-server";

/// Places checked after `PATH` (e.g. when `/usr/sbin` is not on a user's `PATH`).
const EXTRA_LOCATIONS: &[&str] = &["/usr/bin/redis-server", "/usr/sbin/redis-server"];

/// Makes sure `redis-server` is available and returns its path.
///
/// If it is missing and `allow_install` is true, installs it with `apt-get`
/// when running as root. Prints the version line of the binary found.
pub(crate) fn ensure(allow_install: bool) -> Result<PathBuf, Failure> {
    if let Some(path) = find_redis_server() {
        report(&path);
        return Ok(path);
    }

    let root = is_root();
    let has_apt = find_on_path(OsStr::new("apt-get")).is_some();
    if !(allow_install && root && has_apt) {
        return Err(missing(root, has_apt));
    }

    println!("redis-server is missing; installing it with apt-get (needed by the Redis tests)");
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    let mut install = Command::new("apt-get");
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", REDIS_SERVER]);
    // apt-get prints its own diagnostics; on failure we add just the one hint line.
    if run_command(&mut update).is_err() || run_command(&mut install).is_err() {
        return Err(missing(root, has_apt));
    }

    match find_redis_server() {
        Some(path) => {
            report(&path);
            Ok(path)
        }
        None => Err(missing(root, has_apt)),
    }
}

/// The one-line failure explaining how to get `redis-server`.
fn missing(root: bool, has_apt: bool) -> Failure {
    let hint = match (has_apt, root) {
        (true, true) => {
            "run 'apt-get update && apt-get install -y redis-server' and retry".to_owned()
        }
        (true, false) => "run 'sudo apt-get install -y redis-server' and retry".to_owned(),
        (false, _) => {
            "install it with your package manager (e.g. 'sudo apt-get install -y redis-server' \
             or 'brew install redis') and retry"
                .to_owned()
        }
    };
    Failure::new(format!("redis-server is required: {hint}"))
}

/// Prints where `redis-server` is and its `--version` line.
fn report(path: &Path) {
    let version = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(|line| line.trim().to_owned())
        })
        .unwrap_or_else(|| "version unknown: `--version` failed".to_owned());
    println!("redis-server: {} ({version})", path.display());
}

/// Looks for `redis-server` on `PATH`, then in [`EXTRA_LOCATIONS`].
fn find_redis_server() -> Option<PathBuf> {
    find_on_path(OsStr::new(REDIS_SERVER)).or_else(|| {
        EXTRA_LOCATIONS
            .iter()
            .map(PathBuf::from)
            .find(|p| is_executable(p))
    })
}

/// Finds an executable called `name` in a `PATH` directory.
fn find_on_path(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a regular file with an execute bit set.
fn is_executable(path: &Path) -> bool {
    let Ok(meta) = path.metadata() else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// Whether the effective user is root, according to `id -u`.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}
