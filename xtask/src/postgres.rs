//! Finding, and if necessary installing, PostgreSQL for the Postgres tests.
//!
//! The Postgres tests start their own servers (`initdb` and `pg_ctl` in a temporary
//! directory, see `webhook_testkit::PostgresServer`), so all that is needed is the
//! binaries; system services are never touched. Debian puts them in
//! `/usr/lib/postgresql/<major>/bin`, which is not on `PATH`: that is looked at too. When
//! they are missing and we run as root on a machine with `apt-get`, package `postgresql`
//! is installed; otherwise a single line explains what to run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::Failure;
use crate::system::{ServerPackage, find_on_path, is_executable};

/// Where Debian installs the server binaries, one directory per major version.
const DEBIAN_LIB: &str = "/usr/lib/postgresql";

/// The PostgreSQL server and its package.
const PACKAGE: ServerPackage = ServerPackage {
    program: "pg_ctl",
    package: "postgresql",
    needed_by: "the Postgres tests",
    elsewhere: "e.g. 'sudo apt-get install -y postgresql' or 'brew install postgresql'",
};

/// Makes sure `initdb` and `pg_ctl` are available and returns the path of `pg_ctl`.
///
/// If they are missing and `allow_install` is true, installs `postgresql` with
/// `apt-get` when running as root. Prints the version line of the `pg_ctl` found.
pub(crate) fn ensure(allow_install: bool) -> Result<PathBuf, Failure> {
    PACKAGE.ensure(allow_install, find_pg_ctl)
}

/// `pg_ctl` next to an `initdb`: on `PATH`, else in the newest Debian directory.
fn find_pg_ctl() -> Option<PathBuf> {
    let with_initdb = |pg_ctl: PathBuf| {
        let dir = pg_ctl.parent()?;
        is_executable(&dir.join("initdb")).then_some(pg_ctl)
    };
    find_on_path(OsStr::new("pg_ctl"))
        .and_then(with_initdb)
        .or_else(|| newest_debian_bin(Path::new(DEBIAN_LIB)).map(|bin| bin.join("pg_ctl")))
}

/// The `bin` directory of the highest major version under `lib` that has both tools.
fn newest_debian_bin(lib: &Path) -> Option<PathBuf> {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, bin)| is_executable(&bin.join("pg_ctl")) && is_executable(&bin.join("initdb")))
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A directory of its own under the system's temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let name = format!(
                "xtask-postgres-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            );
            let dir = std::env::temp_dir().join(name.replace(['(', ')'], ""));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tool(dir: &Path, name: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn the_newest_complete_debian_version_is_used() {
        let lib = Scratch::new();
        assert_eq!(newest_debian_bin(lib.path()), None);
        for major in ["9", "15", "16"] {
            tool(&lib.path().join(major).join("bin"), "pg_ctl");
        }
        tool(&lib.path().join("9/bin"), "initdb");
        tool(&lib.path().join("15/bin"), "initdb");
        std::fs::create_dir_all(lib.path().join("not-a-version/bin")).unwrap();
        // 16 has no initdb: 15 it is (numerically newer than 9).
        assert_eq!(
            newest_debian_bin(lib.path()),
            Some(lib.path().join("15/bin"))
        );
    }

    #[test]
    fn a_missing_postgres_names_the_one_command() {
        use crate::system::Installer;
        let root = PACKAGE.missing(Installer::ROOT).to_string();
        assert!(root.contains("apt-get install -y postgresql"), "{root}");
        let user = PACKAGE.missing(Installer::USER).to_string();
        assert!(
            user.contains("sudo apt-get install -y postgresql"),
            "{user}"
        );
        let no_apt = PACKAGE.missing(Installer::NO_APT).to_string();
        assert!(no_apt.contains("package manager"), "{no_apt}");
    }
}
