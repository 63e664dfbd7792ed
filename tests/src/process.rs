//! A child process whose stdout is read line by line with deadlines, and which is killed
//! with SIGKILL (no destructor, no flush, no graceful anything) when the test says so or
//! when the handle is dropped.
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//! use webhook_e2e::process::ChildProcess;
//!
//! let mut child = ChildProcess::spawn(Command::new("cat"));
//! child.write_line("ready");
//! assert_eq!(child.next_line(Duration::from_secs(5)).as_deref(), Some("ready"));
//! child.kill(); // SIGKILL
//! ```

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A running child program.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl ChildProcess {
    /// Spawns `command` with piped stdin and stdout (stderr is inherited).
    ///
    /// # Panics
    /// When the program cannot be started.
    #[must_use]
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// The OS process id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, or `None` when none came within `limit` (or stdout closed).
    #[must_use]
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// Every stdout line already received, without waiting.
    #[must_use]
    pub fn drain_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Writes one line to the child's stdin.
    ///
    /// # Panics
    /// When stdin was closed.
    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("write to the child");
        stdin.flush().expect("flush the child's stdin");
    }

    /// Closes the child's stdin (the crash programs stop gracefully on end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits at most `limit` for the child to exit; kills it and panics when it does not.
    ///
    /// # Panics
    /// When the child is still running after `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("child {} did not exit within {limit:?}", self.id());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
