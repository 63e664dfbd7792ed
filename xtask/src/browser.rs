//! The browser for the console's page tests: Debian's `chromium` and `chromium-driver`
//! (`/usr/bin/chromium`, `/usr/bin/chromedriver`), which
//! `crates/webhook-server/tests/browser/mod.rs` drives over WebDriver.
//!
//! `cargo xtask test` needs them: when one is missing it installs both packages with
//! `apt-get` as root, saying so, and otherwise (or with `--no-install`) fails with the one
//! command to run. It then runs the tests with `WEBHOOK_REQUIRE_BROWSER=1`. The browser
//! tests fail without a browser whether or not that variable is set (the stricter choice:
//! a page test that did not run is never a pass); the variable only tells the harness that
//! the xtask already looked, so its failure message says so.
//!
//! The paths can be overridden with `CHROME_BIN` and `CHROMEDRIVER`, as in the harness; an
//! override that points nowhere is reported, and installing the packages does not fix it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Failure;
use crate::system::{Installer, apt_install, is_executable};

/// The variable `cargo xtask test` sets for the test step (see the module docs).
pub(crate) const REQUIRE_VAR: &str = "WEBHOOK_REQUIRE_BROWSER";

/// Debian's Chromium, the browser binary.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`).
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Where the two programs are: the override variable if set, else the Debian path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Paths {
    /// `CHROME_BIN` or `/usr/bin/chromium`.
    chromium: PathBuf,
    /// `CHROMEDRIVER` or `/usr/bin/chromedriver`.
    chromedriver: PathBuf,
}

impl Paths {
    /// Reads the overrides from the environment.
    fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self {
            chromium: var("CHROME_BIN", CHROMIUM),
            chromedriver: var("CHROMEDRIVER", CHROMEDRIVER),
        }
    }
}

/// Which programs are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The chromium binary is executable.
    pub(crate) chromium: bool,
    /// `chromedriver --version` runs.
    pub(crate) chromedriver: bool,
}

impl Probe {
    /// Looks at this machine.
    fn detect(paths: &Paths) -> Self {
        Self {
            chromium: is_executable(&paths.chromium),
            chromedriver: version_line(&paths.chromedriver).is_some(),
        }
    }

    fn complete(self) -> bool {
        self.chromium && self.chromedriver
    }

    /// The Debian packages that provide what is missing.
    fn packages(self) -> Vec<&'static str> {
        let mut packages = Vec::new();
        if !self.chromium {
            packages.push("chromium");
        }
        if !self.chromedriver {
            packages.push("chromium-driver");
        }
        packages
    }
}

/// One installation step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// `apt-get install` these Debian packages.
    Apt(Vec<&'static str>),
}

/// What to install for `probe`, given the machine and whether installing is allowed.
pub(crate) fn plan(probe: Probe, installer: Installer, allow_install: bool) -> Vec<Action> {
    if probe.complete() || !allow_install || !installer.can_apt() {
        return Vec::new();
    }
    vec![Action::Apt(probe.packages())]
}

/// The one command that installs what `probe` lacks, for the failure message.
pub(crate) fn install_command(probe: Probe, installer: Installer) -> Option<String> {
    if probe.complete() {
        return None;
    }
    if installer.apt {
        Some(installer.apt_hint(&probe.packages().join(" ")))
    } else {
        Some(format!(
            "sudo apt-get install -y {} (or install Chromium and a matching chromedriver with your package manager and set CHROME_BIN and CHROMEDRIVER)",
            probe.packages().join(" ")
        ))
    }
}

/// The failure for programs still missing.
fn missing(probe: Probe, installer: Installer, paths: &Paths) -> Failure {
    let mut lacking = Vec::new();
    if !probe.chromium {
        lacking.push(format!("chromium ({})", paths.chromium.display()));
    }
    if !probe.chromedriver {
        lacking.push(format!("chromedriver ({})", paths.chromedriver.display()));
    }
    let command = install_command(probe, installer).unwrap_or_default();
    Failure::new(format!(
        "the browser tests need {}: run '{command}' and retry",
        lacking.join(" and ")
    ))
}

/// The first line `program --version` prints, if it runs and succeeds.
fn version_line(program: &std::path::Path) -> Option<String> {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(|line| line.trim().to_owned())
        })
}

/// Prints both programs' paths and versions.
fn report(paths: &Paths) {
    for path in [&paths.chromium, &paths.chromedriver] {
        let version =
            version_line(path).unwrap_or_else(|| "version unknown: `--version` failed".to_owned());
        println!("browser: {} ({version})", path.display());
    }
}

/// Makes sure chromium and chromedriver are available, installing them with `apt-get`
/// when `allow_install` and the machine permit it.
pub(crate) fn ensure(allow_install: bool) -> Result<(), Failure> {
    let paths = Paths::from_env();
    let probe = Probe::detect(&paths);
    if probe.complete() {
        report(&paths);
        return Ok(());
    }
    let installer = Installer::detect();
    for action in plan(probe, installer, allow_install) {
        match action {
            Action::Apt(packages) => {
                println!(
                    "{} missing; installing with apt-get (needed by the console's browser tests)",
                    packages.join(", ")
                );
                // apt-get prints its own diagnostics; the re-probe below decides.
                let _ = apt_install(&packages);
            }
        }
    }
    let after = Probe::detect(&paths);
    if after.complete() {
        report(&paths);
        Ok(())
    } else {
        Err(missing(after, installer, &paths))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Probe = Probe {
        chromium: false,
        chromedriver: false,
    };
    const NO_DRIVER: Probe = Probe {
        chromium: true,
        chromedriver: false,
    };
    const ALL: Probe = Probe {
        chromium: true,
        chromedriver: true,
    };

    #[test]
    fn installs_what_is_missing_with_apt_as_root_only() {
        assert_eq!(
            plan(NONE, Installer::ROOT, true),
            [Action::Apt(vec!["chromium", "chromium-driver"])]
        );
        assert_eq!(
            plan(NO_DRIVER, Installer::ROOT, true),
            [Action::Apt(vec!["chromium-driver"])]
        );
        assert_eq!(
            plan(NONE, Installer::USER, true),
            [],
            "no apt-get without root"
        );
        assert_eq!(plan(NONE, Installer::NO_APT, true), [], "no apt-get at all");
        assert_eq!(plan(NONE, Installer::ROOT, false), [], "--no-install");
        assert_eq!(plan(ALL, Installer::ROOT, true), []);
    }

    #[test]
    fn a_missing_browser_names_the_one_command_to_run() {
        assert_eq!(install_command(ALL, Installer::ROOT), None);
        assert_eq!(
            install_command(NONE, Installer::ROOT).as_deref(),
            Some("apt-get update && apt-get install -y chromium chromium-driver")
        );
        assert_eq!(
            install_command(NO_DRIVER, Installer::USER).as_deref(),
            Some("sudo apt-get install -y chromium-driver")
        );
        let paths = Paths {
            chromium: PathBuf::from(CHROMIUM),
            chromedriver: PathBuf::from(CHROMEDRIVER),
        };
        assert_eq!(
            missing(NONE, Installer::USER, &paths).to_string(),
            "the browser tests need chromium (/usr/bin/chromium) and chromedriver \
             (/usr/bin/chromedriver): run 'sudo apt-get install -y chromium chromium-driver' and retry"
        );
    }
}
