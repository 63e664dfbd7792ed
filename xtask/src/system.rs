//! The machine's own tools: finding programs on `PATH`, whether we run as root, and
//! installing Debian packages with `apt-get`. Used by the tasks that need tools outside
//! cargo (`redis-server` for the Redis tests, PostgreSQL for the Postgres tests, openssl
//! and Python's `cryptography` for the interop tests, chromium and chromedriver for the
//! browser tests).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Failure, TaskResult, run_command};

/// What the machine offers for installing missing tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Installer {
    /// The effective user is root.
    pub(crate) root: bool,
    /// `apt-get` is on `PATH`.
    pub(crate) apt: bool,
}

impl Installer {
    /// Root with `apt-get` (for the install plans' tests).
    #[cfg(test)]
    pub(crate) const ROOT: Self = Self {
        root: true,
        apt: true,
    };
    /// Not root, `apt-get` present.
    #[cfg(test)]
    pub(crate) const USER: Self = Self {
        root: false,
        apt: true,
    };
    /// Root without `apt-get`.
    #[cfg(test)]
    pub(crate) const NO_APT: Self = Self {
        root: true,
        apt: false,
    };

    /// Looks at this machine.
    pub(crate) fn detect() -> Self {
        Self {
            root: is_root(),
            apt: find_on_path(OsStr::new("apt-get")).is_some(),
        }
    }

    /// Whether `apt-get install` can run without asking anyone.
    pub(crate) fn can_apt(self) -> bool {
        self.root && self.apt
    }

    /// The one command a person should run to install Debian `packages`, for a failure
    /// message: as root `apt-get …`, otherwise with `sudo`.
    pub(crate) fn apt_hint(self, packages: &str) -> String {
        if self.root {
            format!("apt-get update && apt-get install -y {packages}")
        } else {
            format!("sudo apt-get install -y {packages}")
        }
    }
}

/// A server program that tests start themselves, from a Debian package.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerPackage {
    /// The program looked for, for messages (`redis-server`).
    pub(crate) program: &'static str,
    /// The Debian package that has it.
    pub(crate) package: &'static str,
    /// Which tests need it, for the install message.
    pub(crate) needed_by: &'static str,
    /// How to install it without `apt-get`, for the failure message.
    pub(crate) elsewhere: &'static str,
}

impl ServerPackage {
    /// Makes sure the program is available (as `find` finds it) and returns its path.
    /// If it is missing and `allow_install` is true, installs the package with `apt-get`
    /// when running as root, saying so. Prints the version line of the program found.
    pub(crate) fn ensure(
        self,
        allow_install: bool,
        find: impl Fn() -> Option<PathBuf>,
    ) -> Result<PathBuf, Failure> {
        if let Some(path) = find() {
            self.report(&path);
            return Ok(path);
        }
        let installer = Installer::detect();
        if !(allow_install && installer.can_apt()) {
            return Err(self.missing(installer));
        }
        println!(
            "{} is missing; installing {} with apt-get (needed by {})",
            self.program, self.package, self.needed_by
        );
        // apt-get prints its own diagnostics; on failure we add just the one hint line.
        if apt_install(&[self.package]).is_err() {
            return Err(self.missing(installer));
        }
        match find() {
            Some(path) => {
                self.report(&path);
                Ok(path)
            }
            None => Err(self.missing(installer)),
        }
    }

    /// The one-line failure explaining how to get the program.
    pub(crate) fn missing(self, installer: Installer) -> Failure {
        let hint = if installer.apt {
            format!("run '{}' and retry", installer.apt_hint(self.package))
        } else {
            format!(
                "install it with your package manager ({}) and retry",
                self.elsewhere
            )
        };
        Failure::new(format!("{} is required: {hint}", self.program))
    }

    /// Prints where the program is and its `--version` line.
    fn report(self, path: &Path) {
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
        println!("{}: {} ({version})", self.program, path.display());
    }
}

/// Runs `apt-get update` and `apt-get install -y -qq packages…` non-interactively.
pub(crate) fn apt_install(packages: &[&str]) -> TaskResult {
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    run_command(&mut update)?;
    let mut install = Command::new("apt-get");
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq"])
        .args(packages);
    run_command(&mut install)
}

/// Whether `program args…` runs and exits 0 (output discarded).
pub(crate) fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Finds an executable called `name` in a `PATH` directory.
pub(crate) fn find_on_path(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a regular file with an execute bit set.
pub(crate) fn is_executable(path: &Path) -> bool {
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
