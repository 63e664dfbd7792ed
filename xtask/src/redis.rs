//! Finding, and if necessary installing, `redis-server` for the Redis tests.
//!
//! The Redis-backed tests start their own `redis-server` processes, so all
//! that is needed is the binary; system services are never touched. When the
//! binary is missing and we run as root on a machine with `apt-get`, it is
//! installed with `apt-get`; otherwise a single line explains what to run.

use std::ffi::OsStr;
use std::path::PathBuf;

use crate::Failure;
use crate::system::{ServerPackage, find_on_path, is_executable};

/// Name of the Redis server binary.
const REDIS_SERVER: &str = "redis-server";

/// Places checked after `PATH` (e.g. when `/usr/sbin` is not on a user's `PATH`).
const EXTRA_LOCATIONS: &[&str] = &["/usr/bin/redis-server", "/usr/sbin/redis-server"];

/// The Redis server and its package.
const PACKAGE: ServerPackage = ServerPackage {
    program: REDIS_SERVER,
    package: REDIS_SERVER,
    needed_by: "the Redis tests",
    elsewhere: "e.g. 'sudo apt-get install -y redis-server' or 'brew install redis'",
};

/// Makes sure `redis-server` is available and returns its path.
///
/// If it is missing and `allow_install` is true, installs it with `apt-get`
/// when running as root. Prints the version line of the binary found.
pub(crate) fn ensure(allow_install: bool) -> Result<PathBuf, Failure> {
    PACKAGE.ensure(allow_install, find_redis_server)
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
