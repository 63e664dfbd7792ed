//! Finding, and if necessary installing, `redis-server` for the Redis tests.
//!
//! The Redis-backed tests start their own `redis-server` processes, so all
//! that is needed is the binary; system services are never touched. When the
//! binary is missing and we run as root on a machine with `apt-get`, it is
//! installed with `apt-get`; otherwise a single line explains what to run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Failure;
use crate::system::{Installer, apt_install, find_on_path, is_executable};

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

    let installer = Installer::detect();
    if !(allow_install && installer.can_apt()) {
        return Err(missing(installer));
    }

    println!("redis-server is missing; installing it with apt-get (needed by the Redis tests)");
    // apt-get prints its own diagnostics; on failure we add just the one hint line.
    if apt_install(&[REDIS_SERVER]).is_err() {
        return Err(missing(installer));
    }

    match find_redis_server() {
        Some(path) => {
            report(&path);
            Ok(path)
        }
        None => Err(missing(installer)),
    }
}

/// The one-line failure explaining how to get `redis-server`.
fn missing(installer: Installer) -> Failure {
    let hint = if installer.apt {
        format!("run '{}' and retry", installer.apt_hint(REDIS_SERVER))
    } else {
        "install it with your package manager (e.g. 'sudo apt-get install -y redis-server' \
         or 'brew install redis') and retry"
            .to_owned()
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
