//! A real headless Chromium for the console's page tests, driven over WebDriver.
//!
//! Each [`Browser`] starts its own `chromedriver` on a free 127.0.0.1 port, which starts
//! Debian's Chromium (`/usr/bin/chromium`, or `CHROME_BIN`) headless with a fresh profile
//! in a temporary directory; [`Browser::close`] or dropping the value stops both and
//! removes the profile. Every call is bounded in time and panics with what it was doing,
//! so a test reads as a script:
//!
//! ```ignore
//! mod browser;
//! use browser::Browser;
//!
//! #[tokio::test]
//! async fn the_form_says_hello() {
//!     let browser = Browser::start(1024, 768).await;
//!     browser.goto(&format!("http://{addr}/")).await;
//!     browser.fill("input[name=name]", "Ada").await;
//!     browser.click("button[type=submit]").await;
//!     browser.wait_for("#greeting", Duration::from_secs(5)).await;
//!     assert_eq!(browser.text("#greeting").await, "Hello, Ada");
//!     browser.screenshot("hello").await; // target/console-screenshots/hello.png
//!     browser.close().await;
//! }
//! ```
//!
//! Rules this module enforces:
//!
//! - **Never skipped.** Without chromium or chromedriver, [`Browser::start`] prints a loud
//!   notice and panics with the command that installs them, whether or not
//!   `WEBHOOK_REQUIRE_BROWSER=1` is set (`cargo xtask test` sets it after installing them;
//!   it only changes the wording).
//! - **Loopback only.** [`Browser::goto`] refuses any host but 127.0.0.1, `localhost` and
//!   `[::1]`; Chromium runs with background networking, component updates and sync off,
//!   and with a proxy on the closed port 127.0.0.1:9 so that any non-loopback request
//!   fails instead of leaving the machine (Chromium never proxies loopback).
//! - **No stray processes.** chromedriver runs in its own process group; closing kills
//!   the group, then any process whose command line names this browser's profile
//!   directory, and waits for them to be gone.
//! - **Scripts stay inert until a test asks.** Alerts are left open
//!   (`unhandledPromptBehavior: ignore`) so that [`Browser::alert_open`] can see one that an
//!   injected script opened.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Debian's Chromium; `CHROME_BIN` overrides it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`); `CHROMEDRIVER` overrides it.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Set by `cargo xtask test`, which has already made sure the browser is installed.
const REQUIRE_VAR: &str = "WEBHOOK_REQUIRE_BROWSER";
/// The one command that installs the browser on Debian, for failure messages.
const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver";

/// How long chromedriver may take to listen, and then Chromium to start a session.
const STARTUP: Duration = Duration::from_secs(60);
/// How long one WebDriver command may take (a page load is capped at 30 s inside it).
const COMMAND: Duration = Duration::from_secs(45);
/// How long closing may take before the processes are killed regardless.
const SHUTDOWN: Duration = Duration::from_secs(10);
/// How often [`Browser::wait_for`] looks again.
const POLL: Duration = Duration::from_millis(50);

/// The switches Chromium is started with, besides the profile and window size.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Anything that is not loopback goes to a closed port and fails (see the module docs).
    "--proxy-server=http://127.0.0.1:9",
];

/// A headless Chromium and the chromedriver that drives it; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Browser {
    /// The WebDriver session; `None` once closed.
    client: Option<Client>,
    /// The chromedriver process, leader of its own process group; `None` once stopped.
    driver: Option<Child>,
    /// Holds `profile/` (Chromium's `--user-data-dir`) and chromedriver's logs.
    dir: Option<tempfile::TempDir>,
    /// `dir/profile`, also how leftover Chromium processes are recognised.
    profile: PathBuf,
    /// From spawning chromedriver to a ready session.
    startup: Duration,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium whose viewport
    /// is `width` × `height` pixels, with a fresh profile, and returns once a session is
    /// open.
    ///
    /// # Panics
    ///
    /// When chromium or chromedriver is missing (naming the command that installs them),
    /// or when they do not start within a minute (quoting chromedriver's log).
    pub(crate) async fn start(width: u32, height: u32) -> Self {
        let (chromium, chromedriver) = programs();
        let dir = tempfile::Builder::new()
            .prefix("webhook-browser-")
            .tempdir()
            .expect("browser: create a temporary directory for the profile");
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).expect("browser: create the profile directory");
        let mut browser = Self {
            client: None,
            driver: None,
            dir: Some(dir),
            profile,
            startup: Duration::ZERO,
        };
        let began = Instant::now();
        let port = browser.spawn_driver(&chromedriver).await;
        let capabilities = capabilities(&chromium, &browser.profile, width, height);
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are a JSON object")
        };
        let connect = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match connect {
            Ok(client) => client,
            Err(e) => panic!(
                "browser: chromedriver could not start {}: {e}\n{}",
                chromium.display(),
                browser.logs()
            ),
        };
        browser.client = Some(client);
        browser.startup = began.elapsed();
        browser.set_size(width, height).await;
        eprintln!(
            "browser: {} {} ready in {:.1}s (chromedriver on 127.0.0.1:{port})",
            chromium.display(),
            browser.version(),
            browser.startup.as_secs_f64()
        );
        browser
    }

    /// How long [`start`](Self::start) took, from spawning chromedriver to an open session.
    pub(crate) fn startup(&self) -> Duration {
        self.startup
    }

    /// Chromium's profile directory (`--user-data-dir`), removed when the browser closes.
    pub(crate) fn profile_dir(&self) -> &Path {
        &self.profile
    }

    /// The process id of chromedriver while it runs.
    pub(crate) fn driver_pid(&self) -> Option<u32> {
        self.driver.as_ref().map(Child::id)
    }

    /// Opens `url`, which must be on 127.0.0.1, `localhost` or `[::1]` (or `about:blank`),
    /// and waits for the page to load.
    ///
    /// # Panics
    ///
    /// For any other host, or when the page does not load.
    pub(crate) async fn goto(&self, url: &str) {
        assert!(
            is_loopback_url(url),
            "browser: refusing to open {url}: page tests only visit 127.0.0.1"
        );
        self.bounded(&format!("open {url}"), self.client().goto(url))
            .await;
    }

    /// The URL of the current page.
    pub(crate) async fn current_url(&self) -> String {
        self.bounded("read the current URL", self.client().current_url())
            .await
            .to_string()
    }

    /// Clears the form field matching `css` and types `text` into it.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        self.bounded(&format!("clear {css}"), field.clear()).await;
        self.bounded(&format!("type into {css}"), field.send_keys(text))
            .await;
    }

    /// Clicks the element matching `css`.
    pub(crate) async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.bounded(&format!("click {css}"), element.click()).await;
    }

    /// The rendered text of the element matching `css`, as a user sees it.
    pub(crate) async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.bounded(&format!("read the text of {css}"), element.text())
            .await
    }

    /// Whether any element matches `css` now (no waiting).
    pub(crate) async fn exists(&self, css: &str) -> bool {
        !self
            .bounded(
                &format!("look for {css}"),
                self.client().find_all(Locator::Css(css)),
            )
            .await
            .is_empty()
    }

    /// The current DOM serialised as HTML (after scripts ran, unlike the server's bytes).
    pub(crate) async fn html(&self) -> String {
        self.bounded("read the page source", self.client().source())
            .await
    }

    /// Waits until an element matches `css`, at most `timeout`.
    ///
    /// # Panics
    ///
    /// When none appears in time, quoting the URL and the start of the page.
    pub(crate) async fn wait_for(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.exists(css).await {
                return;
            }
            if Instant::now() >= deadline {
                let html = self.html().await;
                let excerpt: String = html.chars().take(2000).collect();
                panic!(
                    "browser: nothing matched {css} within {timeout:?} on {}; the page begins:\n{excerpt}",
                    self.current_url().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resizes the window so that the viewport (what pages and screenshots see) is
    /// `width` × `height` CSS pixels.
    pub(crate) async fn set_size(&self, width: u32, height: u32) {
        let what = format!("resize the viewport to {width}x{height}");
        self.bounded(&what, self.client().set_window_size(width, height))
            .await;
        // The window includes (headless) browser chrome: grow it by what the viewport lacks.
        let inner = self
            .bounded(
                &what,
                self.client().execute(
                    "return [window.innerWidth, window.innerHeight];",
                    Vec::new(),
                ),
            )
            .await;
        let measured = |i: usize| {
            inner
                .get(i)
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or_else(|| panic!("browser: {what}: the page reported {inner}"))
        };
        let (inner_width, inner_height) = (measured(0), measured(1));
        if (inner_width, inner_height) != (width, height) {
            let outer_width = (2 * width).saturating_sub(inner_width);
            let outer_height = (2 * height).saturating_sub(inner_height);
            self.bounded(
                &what,
                self.client().set_window_size(outer_width, outer_height),
            )
            .await;
        }
    }

    /// Saves a PNG of the viewport as `target/console-screenshots/{name}.png` (under
    /// `CARGO_TARGET_DIR` when set) and returns its path; `name` is letters, digits, `-`
    /// and `_`.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "browser: screenshot name {name:?} must be letters, digits, '-' and '_'"
        );
        let png = self
            .bounded("take a screenshot", self.client().screenshot())
            .await;
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "browser: the screenshot is not a PNG"
        );
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("browser: create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png)
            .unwrap_or_else(|e| panic!("browser: write {}: {e}", path.display()));
        eprintln!("browser: screenshot {}", path.display());
        path
    }

    /// Whether an `alert`, `confirm` or `prompt` dialog is open (it stays open until
    /// [`dismiss_alert`](Self::dismiss_alert); while it is, other commands fail).
    pub(crate) async fn alert_open(&self) -> bool {
        let probe = tokio::time::timeout(COMMAND, self.client().get_alert_text()).await;
        match probe {
            Ok(Ok(_)) => true,
            Ok(Err(e)) if e.is_no_such_alert() => false,
            Ok(Err(e)) => panic!("browser: look for an open dialog: {e}"),
            Err(_) => panic!("browser: look for an open dialog: no answer within {COMMAND:?}"),
        }
    }

    /// Dismisses the open dialog.
    pub(crate) async fn dismiss_alert(&self) {
        self.bounded("dismiss the dialog", self.client().dismiss_alert())
            .await;
    }

    /// Evaluates the JavaScript expression `js` in the page; it must yield a boolean.
    ///
    /// ```ignore
    /// assert!(browser.eval_bool("typeof window.__xss === 'undefined'").await);
    /// ```
    pub(crate) async fn eval_bool(&self, js: &str) -> bool {
        let value = self
            .bounded(
                &format!("evaluate {js}"),
                self.client()
                    .execute(&format!("return ({js});"), Vec::new()),
            )
            .await;
        match value {
            Value::Bool(b) => b,
            other => panic!("browser: {js} gave {other}, not a boolean"),
        }
    }

    /// Ends the session (Chromium quits), then stops chromedriver and anything left of
    /// Chromium, and removes the profile. Dropping a `Browser` does the same without the
    /// polite first step.
    pub(crate) async fn close(mut self) {
        if let Some(client) = self.client.take() {
            // Chromium may already be gone; the kill below makes sure either way.
            let _ = tokio::time::timeout(SHUTDOWN, client.close()).await;
        }
        self.kill();
    }

    /// The open session.
    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("browser: the session is closed")
    }

    /// The element matching `css`.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = tokio::time::timeout(COMMAND, self.client().find(Locator::Css(css))).await;
        match found {
            Ok(Ok(element)) => element,
            Ok(Err(e)) if e.is_no_such_element() => panic!(
                "browser: nothing matches {css} on {}",
                self.current_url().await
            ),
            Ok(Err(e)) => panic!("browser: find {css}: {e}"),
            Err(_) => panic!("browser: find {css}: no answer within {COMMAND:?}"),
        }
    }

    /// Awaits a WebDriver command for at most [`COMMAND`], panicking with `what` on an
    /// error or a timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        command: impl Future<Output = Result<T, CmdError>>,
    ) -> T {
        match tokio::time::timeout(COMMAND, command).await {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("browser: {what}: {e}"),
            Err(_) => panic!("browser: {what}: no answer within {COMMAND:?}"),
        }
    }

    /// Chromium's version as the session reports it.
    fn version(&self) -> String {
        self.client
            .as_ref()
            .and_then(Client::capabilities)
            .and_then(|c| c.get("browserVersion"))
            .and_then(Value::as_str)
            .unwrap_or("(version unknown)")
            .to_owned()
    }

    /// Spawns chromedriver on a free port and waits until it listens; returns the port.
    /// A port taken between choosing and binding it makes chromedriver exit, so that is
    /// retried a few times.
    async fn spawn_driver(&mut self, chromedriver: &Path) -> u16 {
        let deadline = Instant::now() + STARTUP;
        for _attempt in 0..3 {
            let port = free_port();
            let dir = self.dir().to_owned();
            let out = File::create(dir.join("chromedriver.out"))
                .expect("browser: create chromedriver's output file");
            let err = out.try_clone().expect("browser: clone a file handle");
            let child = Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    dir.join("chromedriver.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                // Its own process group, so that closing can kill Chromium with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("browser: start {}: {e}", chromedriver.display()));
            self.driver = Some(child);
            loop {
                if let Some(status) = self.driver_exited() {
                    eprintln!("browser: chromedriver exited ({status}); trying another port");
                    break;
                }
                if std::net::TcpStream::connect_timeout(
                    &(Ipv4Addr::LOCALHOST, port).into(),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    return port;
                }
                assert!(
                    Instant::now() < deadline,
                    "browser: chromedriver did not listen on 127.0.0.1:{port} within {STARTUP:?}\n{}",
                    self.logs()
                );
                tokio::time::sleep(POLL).await;
            }
        }
        panic!("browser: chromedriver would not start\n{}", self.logs());
    }

    /// The exit status of chromedriver if it has exited.
    fn driver_exited(&mut self) -> Option<std::process::ExitStatus> {
        let driver = self.driver.as_mut()?;
        let status = driver.try_wait().ok().flatten()?;
        self.driver = None;
        Some(status)
    }

    /// The temporary directory.
    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("browser: the temporary directory is gone")
            .path()
    }

    /// The end of chromedriver's output and log, for failure messages.
    fn logs(&self) -> String {
        let Some(dir) = self.dir.as_ref() else {
            return String::new();
        };
        let mut text = String::new();
        for name in ["chromedriver.out", "chromedriver.log"] {
            let content = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            text.push_str(&format!(
                "--- {name} (last lines) ---\n{}\n",
                tail.join("\n")
            ));
        }
        text
    }

    /// Kills chromedriver's process group and any process that still names the profile,
    /// waits until they are gone (at most [`SHUTDOWN`]), then removes the profile.
    fn kill(&mut self) {
        self.client = None;
        if let Some(mut driver) = self.driver.take() {
            signal(&format!("-{}", driver.id()));
            let _ = driver.kill();
            let _ = driver.wait();
        }
        let needle = self.profile.to_string_lossy().into_owned();
        let deadline = Instant::now() + SHUTDOWN;
        loop {
            let stray = processes_mentioning(&needle);
            if stray.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                eprintln!("browser: processes {stray:?} outlived the browser");
                break;
            }
            for pid in stray {
                signal(&pid.to_string());
            }
            std::thread::sleep(POLL);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The chromium and chromedriver to use, or a loud failure naming the install command.
fn programs() -> (PathBuf, PathBuf) {
    let path = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let chromium = path("CHROME_BIN", CHROMIUM);
    let chromedriver = path("CHROMEDRIVER", CHROMEDRIVER);
    let missing: Vec<String> = [&chromium, &chromedriver]
        .into_iter()
        .filter(|p| !is_executable(p))
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        let missing = missing.join(" and ");
        eprintln!(
            "\n!!! BROWSER TEST NOT RUN: {missing} not found; the console's page tests need a real headless Chromium !!!\n"
        );
        if std::env::var_os(REQUIRE_VAR).is_some() {
            panic!(
                "{missing} missing although {REQUIRE_VAR} is set (cargo xtask test installs them): \
                 run '{INSTALL}' as root, or check CHROME_BIN / CHROMEDRIVER"
            );
        }
        panic!(
            "{missing} missing: run '{INSTALL}' as root (or 'cargo xtask test', which installs them); \
             page tests never skip"
        );
    }
    (chromium, chromedriver)
}

/// The WebDriver capabilities for a headless Chromium with profile `profile`.
fn capabilities(chromium: &Path, profile: &Path, width: u32, height: u32) -> Value {
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&a| a.to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--window-size={width},{height}"));
    json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": args,
        },
        "pageLoadStrategy": "normal",
        "unhandledPromptBehavior": "ignore",
        "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 10_000 },
    })
}

/// Whether `url` is `about:blank` or an http(s) URL whose host is loopback.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    if url == "about:blank" {
        return true;
    }
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    // The host is everything before the port, if any (an IPv6 host ends at its `]`).
    let host = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
        _ => authority,
    };
    matches!(
        host.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("browser: find a free port on 127.0.0.1")
        .port()
}

/// `target/console-screenshots`, under `CARGO_TARGET_DIR` when it is set.
fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/webhook-server sits two levels below the workspace root");
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => workspace.join(dir), // an absolute path replaces `workspace`
        None => workspace.join("target"),
    };
    target.join("console-screenshots")
}

/// Whether `path` is an executable regular file.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The live processes (not zombies) whose command line contains `needle`, except this one.
pub(crate) fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(needle)
            })
        })
        .collect()
}

/// Sends SIGKILL to `target` (a pid, or `-pgid` for a process group) through the shell's
/// `kill` (dash's takes `-9 -PGID` but not `--`), since this crate has no `unsafe` and so
/// no `libc::kill`, and procps' `/bin/kill` is not on every Debian.
fn signal(target: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -9 {target} 2>/dev/null"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
