//! A throwaway PostgreSQL server: `initdb` and `pg_ctl` in a temporary directory.
//!
//! PostgreSQL refuses to run as root, and tests and CI run as root: then every server
//! command runs as the unprivileged `postgres` user that Debian's `postgresql` package
//! creates, and the temporary directory is handed to it.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::free_port;

/// Where Debian installs the server binaries (`/usr/lib/postgresql/<major>/bin`).
const DEBIAN_LIB: &str = "/usr/lib/postgresql";

/// A PostgreSQL server on 127.0.0.1 (no other address), with `fsync` and
/// `synchronous_commit` on, its unix socket inside its own temporary directory. Stopped
/// with `pg_ctl stop -m immediate` (as a crash would) when dropped.
#[derive(Debug)]
pub struct PostgresServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The `(uid, gid)` the server runs as, when this process is root.
    run_as: Option<(u32, u32)>,
    running: bool,
}

impl PostgresServer {
    /// Creates a database cluster in a temporary directory and starts a server on it.
    ///
    /// # Panics
    /// When PostgreSQL is not installed (with the command that installs it), or the
    /// server does not come up: a Postgres test must fail, not skip.
    #[must_use]
    pub fn start() -> Self {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().expect("create a temporary directory for PostgreSQL");
        let run_as = if is_root() {
            let ids = user_ids("postgres").unwrap_or_else(|| {
                panic!(
                    "PostgreSQL refuses to run as root and there is no `postgres` user: \
                     run `apt-get install -y postgresql` (it creates one)"
                )
            });
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                .expect("hand the temporary directory to the postgres user");
            Some(ids)
        } else {
            None
        };
        let port = free_port().expect("find a free loopback port");
        let mut server = Self {
            dir,
            bin,
            port,
            run_as,
            running: false,
        };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        server.launch();
        server
    }

    /// The connection URL, `postgres://postgres@127.0.0.1:<port>/postgres` (no password:
    /// the server trusts loopback connections).
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no checkpoint, as a crash
    /// would; a restart recovers from the write-ahead log).
    pub fn stop_immediate(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(&data)
            .status();
    }

    /// Starts the server (again, after [`PostgresServer::stop_immediate`]) on the same
    /// data directory and port, and waits until it accepts connections.
    ///
    /// # Panics
    /// When it does not come up.
    pub fn launch(&mut self) {
        assert!(!self.running, "PostgreSQL is already running");
        let data = self.data_dir();
        let socket_dir = self.dir.path().to_owned();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on -c synchronous_commit=on \
             -c max_connections=200",
            self.port,
            socket_dir.display()
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        );
        self.running = true;
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server command, as the `postgres` user when this process is root, run in the
    /// temporary directory (which that user can enter).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
            command.env("HOME", self.dir.path());
        }
        command
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("failed to run {program}: {e}"));
        if !output.status.success() {
            let log = fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} failed ({}): {}\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop_immediate();
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the one on PATH, else the
/// newest `/usr/lib/postgresql/<major>/bin` (Debian does not put them on PATH).
///
/// # Panics
/// When PostgreSQL is not installed, with the command that installs it.
#[must_use]
pub fn postgres_bin_dir() -> PathBuf {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| has_tools(dir));
    on_path
        .or_else(|| {
            let mut majors: Vec<(u32, PathBuf)> = fs::read_dir(DEBIAN_LIB)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let major = entry.file_name().to_str()?.parse().ok()?;
                    Some((major, entry.path().join("bin")))
                })
                .filter(|(_, bin)| has_tools(bin))
                .collect();
            majors.sort();
            majors.pop().map(|(_, bin)| bin)
        })
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL is required by this test and is not installed: run `cargo xtask \
                 test` (it installs it) or `apt-get install -y postgresql`"
            )
        })
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A user's `(uid, gid)` from `/etc/passwd`.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpStream};

    use super::*;

    fn accepts(port: u16) -> bool {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    }

    #[test]
    fn starts_stops_at_once_and_starts_again_on_the_same_port() {
        let mut server = PostgresServer::start();
        assert!(accepts(server.port()));
        assert!(server.url().starts_with("postgres://postgres@127.0.0.1:"));
        server.stop_immediate();
        assert!(!accepts(server.port()));
        server.launch();
        assert!(accepts(server.port()));
        let dir = server.dir.path().to_owned();
        drop(server);
        assert!(
            !dir.exists(),
            "the temporary directory goes with the server"
        );
    }
}
