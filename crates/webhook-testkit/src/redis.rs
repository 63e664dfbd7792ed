//! A throwaway `redis-server`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long a started server has to accept connections.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// A `redis-server` child process on 127.0.0.1, stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    append_only: bool,
}

impl RedisServer {
    /// Starts a server without persistence.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not come up: a Redis test must fail, not skip.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a server with the append-only file on (`appendfsync always`), so that a
    /// restart keeps everything it acknowledged.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    #[must_use]
    pub fn start_with_aof() -> Self {
        Self::start_with(true)
    }

    fn start_with(append_only: bool) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory for redis-server");
        let port = free_port().expect("find a free loopback port");
        let mut server = Self {
            child: None,
            port,
            dir,
            append_only,
        };
        server.launch();
        server
    }

    /// The connection URL, `redis://127.0.0.1:<port>/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL, no shutdown save) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and data directory.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts the server again after [`RedisServer::kill`].
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let binary = redis_server_binary();
        let mut command = Command::new(&binary);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--daemonize", "no", "--loglevel", "warning"]);
        if self.append_only {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", binary.display()));
        self.child = Some(child);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err() {
            assert!(
                started.elapsed() < STARTUP_DEADLINE,
                "redis-server did not accept connections on port {} within {STARTUP_DEADLINE:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Finds `redis-server` on PATH or in the usual Debian places.
///
/// # Panics
/// When it is not installed, with the command that installs it.
#[must_use]
pub fn redis_server_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("redis-server"));
    let fixed = ["/usr/bin/redis-server", "/usr/sbin/redis-server"]
        .into_iter()
        .map(PathBuf::from);
    on_path
        .chain(fixed)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server is required by this test and is not installed: \
             run `cargo xtask test` (it installs it) or `apt-get install -y redis-server`"
            )
        })
}
