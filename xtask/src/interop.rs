//! The interop tools: openssl and Python's `cryptography`, which
//! `crates/webhook-core/tests/interop.rs` uses to check our signatures independently.
//!
//! `cargo xtask test` needs them: when one is missing it installs it (openssl with
//! `apt-get` as root; `cryptography` with `python3 -m pip install`, or Debian's
//! `python3-cryptography` as root), saying so, and otherwise fails with the one command to
//! run. It then runs the tests with `WEBHOOK_REQUIRE_INTEROP=1`, so the interop tests fail
//! rather than skip: nothing is ever skipped silently.

use crate::Failure;
use crate::system::{Installer, apt_install, succeeds};

/// The variable that turns a missing interop tool from a loud notice into a test failure.
pub(crate) const REQUIRE_VAR: &str = "WEBHOOK_REQUIRE_INTEROP";

/// The pip command that installs `cryptography`.
const PIP_INSTALL: &str = "python3 -m pip install cryptography";

/// Which tools are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// `openssl version` runs.
    pub(crate) openssl: bool,
    /// `python3 -c "import cryptography"` runs.
    pub(crate) cryptography: bool,
}

impl Probe {
    /// Looks at this machine.
    fn detect() -> Self {
        Self {
            openssl: succeeds("openssl", &["version"]),
            cryptography: succeeds("python3", &["-c", "import cryptography"]),
        }
    }

    fn complete(self) -> bool {
        self.openssl && self.cryptography
    }
}

/// One installation step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// `apt-get install` these Debian packages.
    Apt(Vec<&'static str>),
    /// `python3 -m pip install --quiet cryptography`, falling back to Debian's
    /// `python3-cryptography` when apt is usable.
    Pip { apt_fallback: bool },
}

/// What to install for `probe`, given the machine and whether installing is allowed.
pub(crate) fn plan(probe: Probe, installer: Installer, allow_install: bool) -> Vec<Action> {
    let mut actions = Vec::new();
    if !allow_install {
        return actions;
    }
    if !probe.openssl && installer.can_apt() {
        actions.push(Action::Apt(vec!["openssl"]));
    }
    if !probe.cryptography {
        actions.push(Action::Pip {
            apt_fallback: installer.can_apt(),
        });
    }
    actions
}

/// The one command that installs what `probe` lacks, for the failure message.
pub(crate) fn install_command(probe: Probe, installer: Installer) -> Option<String> {
    let openssl = (!probe.openssl).then(|| installer.apt_hint("openssl"));
    let cryptography = (!probe.cryptography).then(|| PIP_INSTALL.to_owned());
    match (openssl, cryptography) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one),
        (Some(apt), Some(pip)) => Some(format!("{apt} && {pip}")),
    }
}

/// The failure for tools still missing.
fn missing(probe: Probe, installer: Installer) -> Failure {
    let mut lacking = Vec::new();
    if !probe.openssl {
        lacking.push("openssl");
    }
    if !probe.cryptography {
        lacking.push("Python's cryptography");
    }
    let command = install_command(probe, installer).unwrap_or_default();
    Failure::new(format!(
        "the interop tests need {}: run '{command}' and retry",
        lacking.join(" and ")
    ))
}

/// Makes sure openssl and Python's `cryptography` are available, installing them when
/// `allow_install` and the machine permit it.
pub(crate) fn ensure(allow_install: bool) -> Result<(), Failure> {
    let probe = Probe::detect();
    if probe.complete() {
        println!("interop tools: openssl and Python cryptography found");
        return Ok(());
    }
    let installer = Installer::detect();
    for action in plan(probe, installer, allow_install) {
        // Each installer prints its own diagnostics; the re-probe below decides.
        match action {
            Action::Apt(packages) => {
                println!(
                    "{} missing; installing with apt-get (needed by the interop tests)",
                    packages.join(", ")
                );
                let _ = apt_install(&packages);
            }
            Action::Pip { apt_fallback } => {
                println!(
                    "Python cryptography missing; installing with '{PIP_INSTALL}' (needed by the interop tests)"
                );
                let pip = succeeds(
                    "python3",
                    &["-m", "pip", "install", "--quiet", "cryptography"],
                );
                if !pip && apt_fallback {
                    println!("pip failed; installing python3-cryptography with apt-get");
                    let _ = apt_install(&["python3-cryptography"]);
                }
            }
        }
    }
    let after = Probe::detect();
    if after.complete() {
        println!("interop tools: installed");
        Ok(())
    } else {
        Err(missing(after, installer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Probe = Probe {
        openssl: false,
        cryptography: false,
    };
    const NO_PYTHON: Probe = Probe {
        openssl: true,
        cryptography: false,
    };
    const NO_OPENSSL: Probe = Probe {
        openssl: false,
        cryptography: true,
    };
    const ALL: Probe = Probe {
        openssl: true,
        cryptography: true,
    };

    #[test]
    fn installs_what_is_missing_when_allowed() {
        assert_eq!(
            plan(NONE, Installer::ROOT, true),
            [
                Action::Apt(vec!["openssl"]),
                Action::Pip { apt_fallback: true }
            ]
        );
        assert_eq!(
            plan(NONE, Installer::USER, true),
            [Action::Pip {
                apt_fallback: false
            }],
            "no apt-get without root; pip may still work"
        );
        assert_eq!(plan(NONE, Installer::ROOT, false), [], "--no-install");
        assert_eq!(plan(ALL, Installer::ROOT, true), []);
    }

    #[test]
    fn a_missing_tool_names_the_one_command_to_run() {
        assert_eq!(install_command(ALL, Installer::ROOT), None);
        assert_eq!(
            install_command(NO_OPENSSL, Installer::ROOT).as_deref(),
            Some("apt-get update && apt-get install -y openssl")
        );
        assert_eq!(
            install_command(NO_OPENSSL, Installer::USER).as_deref(),
            Some("sudo apt-get install -y openssl")
        );
        assert_eq!(
            install_command(NO_PYTHON, Installer::USER).as_deref(),
            Some("python3 -m pip install cryptography")
        );
        assert_eq!(
            install_command(NONE, Installer::USER).as_deref(),
            Some("sudo apt-get install -y openssl && python3 -m pip install cryptography")
        );
        let failure = missing(NO_PYTHON, Installer::ROOT).to_string();
        assert_eq!(
            failure,
            "the interop tests need Python's cryptography: run 'python3 -m pip install cryptography' and retry"
        );
    }
}
