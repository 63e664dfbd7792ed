//! The `openapi` step: [Schemathesis](https://schemathesis.readthedocs.io) run against the
//! `/openapi.json` of a live `webhook serve`, every operation, stateful links included,
//! with the checks "no 5xx" and "the response conforms to the document" (status code,
//! content type, headers, body schema).
//!
//! 1. [`ensure`]: Schemathesis [`REQUIREMENT`] in a virtual environment of its own under
//!    the target directory (`target/schemathesis-venv`), installed with pip when missing,
//!    saying so; with `--no-install` a missing one fails with the one command to run.
//! 2. [`run`]: builds the `webhook` binary, then runs the rest of the step in a network
//!    namespace of its own (`unshare --net`, as root, or with `--map-root-user`): the
//!    endpoints Schemathesis makes up have random URLs, and inside the namespace the only
//!    network is loopback, so no delivery can leave the machine whatever the URL.
//! 3. [`in_namespace`] (the hidden task `openapi-netns`): brings `lo` up, starts
//!    `webhook serve --addr 127.0.0.1:0 --allow-private` on a fresh store in
//!    `target/openapi/` with a random admin token in its environment, seeds an
//!    organization, its secret, a token, an endpoint of each style (two deliver to a
//!    local sink, one to a closed port so its delivery fails) and published messages,
//!    writes `schemathesis.toml` naming those ids as path parameters, runs Schemathesis
//!    (bounded by [`MAX_EXAMPLES`] and [`SCHEMATHESIS_DEADLINE`]) and stops the server
//!    (SIGTERM, then kill) whatever Schemathesis said. The server's log, the config and
//!    a JUnit report stay in `target/openapi/`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::system::{Installer, apt_install, is_executable, succeeds};
use crate::{Failure, TaskResult, cargo, describe, project_root, run_command};

/// The Schemathesis release line the step is written for (its config file and options).
pub(crate) const REQUIREMENT: &str = "schemathesis~=4.32";

/// The oldest accepted version: `(major, minor)`; the major version is pinned.
const MIN_VERSION: (u32, u32) = (4, 32);

/// Test cases per operation and phase.
pub(crate) const MAX_EXAMPLES: u32 = 100;

/// The checks: no 5xx, and status code, content type, headers and body as documented;
/// in the stateful phase also that a created resource can be read and a deleted one
/// cannot.
pub(crate) const CHECKS: &str = "not_a_server_error,status_code_conformance,\
content_type_conformance,response_headers_conformance,response_schema_conformance,\
use_after_free,ensure_resource_availability";

/// Each pass of Schemathesis is stopped (and the step fails) past this.
const SCHEMATHESIS_DEADLINE: Duration = Duration::from_secs(6 * 60);

/// How long `webhook serve` gets to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// How long `webhook serve` gets to drain after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The hidden task that runs inside the namespace.
pub(crate) const IN_NAMESPACE_TASK: &str = "openapi-netns";

/// The target directory: `$CARGO_TARGET_DIR`, else `target/` in the project root.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

fn venv_dir() -> PathBuf {
    target_dir().join("schemathesis-venv")
}

/// `(major, minor, patch)` of `schemathesis --version`'s line `schemathesis, version 4.32.5`.
fn parse_version(line: &str) -> Option<(u32, u32, u32)> {
    let version = line.trim().rsplit(' ').next()?;
    let mut parts = version.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// Whether `version` is of the pinned major version and recent enough.
fn acceptable(version: (u32, u32, u32)) -> bool {
    version.0 == MIN_VERSION.0 && version.1 >= MIN_VERSION.1
}

/// The version of the Schemathesis at `exe`, if it runs.
fn version_of(exe: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    parse_version(String::from_utf8_lossy(&out.stdout).lines().next()?)
}

/// The one command that installs what the step needs.
fn install_command(venv: &Path) -> String {
    let venv = venv.display();
    format!("python3 -m venv {venv} && {venv}/bin/python -m pip install '{REQUIREMENT}'")
}

/// Makes sure Schemathesis ([`REQUIREMENT`]) is installed in `target/schemathesis-venv`,
/// installing it with pip when `allow_install`; returns its executable.
pub(crate) fn ensure(allow_install: bool) -> Result<PathBuf, Failure> {
    let venv = venv_dir();
    let exe = venv.join("bin").join("schemathesis");
    let found = version_of(&exe);
    if let Some(version) = found.filter(|v| acceptable(*v)) {
        report(&exe, version);
        return Ok(exe);
    }
    let lacking = match found {
        Some((major, minor, patch)) => format!(
            "{} has schemathesis {major}.{minor}.{patch}, the step needs '{REQUIREMENT}'",
            venv.display()
        ),
        None => format!("schemathesis is not installed in {}", venv.display()),
    };
    if !allow_install {
        return Err(Failure::new(format!(
            "the openapi step needs Schemathesis: {lacking}; run '{}' and retry",
            install_command(&venv)
        )));
    }
    println!("{lacking}; installing '{REQUIREMENT}' there with pip (needed by the openapi step)");
    let python = venv.join("bin").join("python");
    if !is_executable(&python) {
        let venv_text = venv.to_string_lossy().into_owned();
        if !succeeds("python3", &["-m", "venv", &venv_text]) {
            let installer = Installer::detect();
            if installer.can_apt() {
                println!(
                    "'python3 -m venv' failed; installing python3-venv with apt-get and retrying"
                );
                let _ = apt_install(&["python3-venv"]);
                let _ = std::fs::remove_dir_all(&venv);
            }
            let mut create = Command::new("python3");
            create.args(["-m", "venv"]).arg(&venv);
            run_command(&mut create).map_err(|e| {
                Failure::new(format!(
                    "{e}: the openapi step needs Python's venv module (Debian: python3-venv); \
                     then run '{}'",
                    install_command(&venv)
                ))
            })?;
        }
    }
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        REQUIREMENT,
    ]);
    run_command(&mut pip)
        .map_err(|e| Failure::new(format!("{e}; run '{}' and retry", install_command(&venv))))?;
    match version_of(&exe).filter(|v| acceptable(*v)) {
        Some(version) => {
            report(&exe, version);
            Ok(exe)
        }
        None => Err(Failure::new(format!(
            "pip installed no usable schemathesis in {}; run '{}' and retry",
            venv.display(),
            install_command(&venv)
        ))),
    }
}

fn report(exe: &Path, (major, minor, patch): (u32, u32, u32)) {
    println!("schemathesis: {} ({major}.{minor}.{patch})", exe.display());
}

/// How to enter a network namespace of our own here, if we can: `unshare --net` as root,
/// else with a user namespace that maps us to root.
fn namespace_command() -> Result<Command, Failure> {
    for flags in [&["--net"][..], &["--net", "--map-root-user"][..]] {
        let mut probe = Vec::from(flags);
        probe.push("true");
        if succeeds("unshare", &probe) {
            let mut cmd = Command::new("unshare");
            cmd.args(flags);
            return Ok(cmd);
        }
    }
    Err(Failure::new(
        "the openapi step runs `webhook serve` in a network namespace of its own, so that the \
         endpoints Schemathesis makes up can only reach loopback, and `unshare --net` is refused \
         here: run it as root (or allow unprivileged user namespaces: \
         'sysctl kernel.unprivileged_userns_clone=1') and retry",
    ))
}

/// Builds `webhook` and runs the step's live part in a network namespace of its own.
pub(crate) fn run(schemathesis: &Path) -> TaskResult {
    let mut build = cargo();
    build.args(["build", "--package", "webhook-cli", "--bin", "webhook"]);
    run_command(&mut build)?;
    let webhook = target_dir().join("debug").join("webhook");
    if !is_executable(&webhook) {
        return Err(Failure::new(format!(
            "`{}` built no {}",
            describe(&build),
            webhook.display()
        )));
    }
    let me = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot find the xtask binary: {e}")))?;
    let mut inner = namespace_command()?;
    inner
        .arg("--")
        .arg(me)
        .arg(IN_NAMESPACE_TASK)
        .arg(webhook)
        .arg(schemathesis)
        .arg(target_dir().join("openapi"));
    run_command(&mut inner)
}

/// The hidden task `openapi-netns WEBHOOK SCHEMATHESIS DIR`, run by [`run`] inside the
/// namespace.
pub(crate) fn in_namespace(args: &[OsString]) -> TaskResult {
    let [webhook, schemathesis, dir] = args else {
        return Err(Failure::usage(format!(
            "`{IN_NAMESPACE_TASK}` takes WEBHOOK SCHEMATHESIS DIR"
        )));
    };
    let (webhook, schemathesis, dir) =
        (Path::new(webhook), Path::new(schemathesis), Path::new(dir));
    loopback_up()?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| Failure::new(format!("cannot clear {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;

    let token = random_token()?;
    let sink = start_sink()?;
    let mut server = Server::start(webhook, dir, &token)?;
    let outcome = (|| {
        let seed = seed(server.addr, &token, sink)?;
        println!(
            "seeded: organization {}, endpoints {} (event), {} (domain), {} (standard), \
             {} (to delete), message {}, failed delivery {}",
            seed.org,
            seed.event_endpoint,
            seed.domain_endpoint,
            seed.standard_endpoint,
            seed.doomed_endpoint,
            seed.event_id,
            seed.failed_delivery
        );
        let mut failures = Vec::new();
        for pass in &PASSES {
            let config = dir.join(pass.config_file);
            let text = if pass.seeded_ids {
                seed.config()
            } else {
                stateful_config()
            };
            std::fs::write(&config, text)
                .map_err(|e| Failure::new(format!("cannot write {}: {e}", config.display())))?;
            if let Err(failure) =
                run_schemathesis(schemathesis, pass, &config, server.addr, &token, dir)
            {
                println!("error: {failure}");
                failures.push(failure.to_string());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(failures.join("; ")))
        }
    })();
    let stopped = server.stop();
    match (outcome, stopped) {
        (Err(failure), _) => Err(Failure::with_code(
            format!(
                "{failure} (server log: {})",
                dir.join("server.log").display()
            ),
            failure.code,
        )),
        (Ok(()), Err(failure)) => Err(failure),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// One run of Schemathesis.
#[derive(Debug)]
pub(crate) struct Pass {
    /// For messages.
    name: &'static str,
    /// `--phases`.
    phases: &'static str,
    /// Its config file, written in the run's directory.
    config_file: &'static str,
    /// Whether the config names the seeded ids as path parameters.
    seeded_ids: bool,
}

/// The passes: the examples, coverage and fuzzing phases with the seeded ids; then the
/// stateful phase, where every id comes from the links (a configured id would win over
/// the link's, and the fuzzing pass may have revoked or deleted the seeded ones).
pub(crate) const PASSES: [Pass; 2] = [
    Pass {
        name: "examples, coverage and fuzzing",
        phases: "examples,coverage,fuzzing",
        config_file: "schemathesis.toml",
        seeded_ids: true,
    },
    Pass {
        name: "stateful (OpenAPI links)",
        phases: "stateful",
        config_file: "schemathesis-stateful.toml",
        seeded_ids: false,
    },
];

/// The Schemathesis command line of `pass` (the admin token comes from the environment,
/// through the config file).
fn schemathesis_command(
    exe: &Path,
    pass: &Pass,
    config: &Path,
    addr: SocketAddr,
    dir: &Path,
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["--checks", CHECKS])
        .args(["--phases", pass.phases])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .args(["--report", "junit,har"])
        .arg("--report-dir")
        .arg(dir.join("report"))
        .arg("--no-color");
    cmd
}

fn run_schemathesis(
    exe: &Path,
    pass: &Pass,
    config: &Path,
    addr: SocketAddr,
    token: &str,
    dir: &Path,
) -> TaskResult {
    let mut cmd = schemathesis_command(exe, pass, config, addr, dir);
    let shown = describe(&cmd);
    println!("==> schemathesis, {}: {shown}", pass.name);
    let mut child = cmd
        .env(TOKEN_VAR, token)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| Failure::new(format!("could not start `{shown}`: {e}")))?;
    let status = wait_for(&mut child, SCHEMATHESIS_DEADLINE)?;
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(Failure::new(format!(
            "schemathesis ({}) found problems ({status}); its JUnit reports are in {}",
            pass.name,
            dir.join("report").display()
        ))),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(Failure::new(format!(
                "schemathesis ({}) ran over {} s and was stopped",
                pass.name,
                SCHEMATHESIS_DEADLINE.as_secs()
            )))
        }
    }
}

/// Waits for `child` at most `deadline`; `None` if it is still running.
fn wait_for(child: &mut Child, deadline: Duration) -> Result<Option<ExitStatus>, Failure> {
    let start = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Failure::new(format!("cannot wait for a child: {e}")))?
        {
            return Ok(Some(status));
        }
        if start.elapsed() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The variable that carries the admin token to `webhook serve` and Schemathesis.
const TOKEN_VAR: &str = "WEBHOOK_ADMIN_TOKEN";

/// Brings the namespace's `lo` up (a new network namespace starts with it down), with
/// Python's `fcntl` so that no `ip` command is needed.
fn loopback_up() -> TaskResult {
    const SCRIPT: &str = "import fcntl, socket, struct\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        req = struct.pack('16sH14x', b'lo', 0)\n\
        flags = struct.unpack('16sH14x', fcntl.ioctl(s, 0x8913, req))[1]\n\
        fcntl.ioctl(s, 0x8914, struct.pack('16sH14x', b'lo', flags | 1))\n";
    let mut up = Command::new("python3");
    up.args(["-c", SCRIPT]);
    run_command(&mut up)
        .map_err(|e| Failure::new(format!("cannot bring the namespace's loopback up: {e}")))
}

/// 32 random bytes as hex, from the kernel.
fn random_token() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Failure::new(format!("cannot read /dev/urandom: {e}")))?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// A receiver that answers every request `204 No Content`, for the seeded endpoints. It
/// lives as long as this process (which the namespace's end also bounds).
fn start_sink() -> Result<SocketAddr, Failure> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Failure::new(format!("cannot bind the sink: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new(format!("sink address: {e}")))?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer_204(stream));
        }
    });
    Ok(addr)
}

fn answer_204(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let length = String::from_utf8_lossy(&head)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .unwrap_or(0);
    let _ = std::io::copy(&mut (&mut stream).take(length), &mut std::io::sink());
    let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

/// A running `webhook serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
    stopped: bool,
}

impl Server {
    /// Starts it on `127.0.0.1:0` with a fresh store in `dir`, its log in
    /// `dir/server.log`, and waits for its `listening on http://…` line.
    fn start(webhook: &Path, dir: &Path, token: &str) -> Result<Self, Failure> {
        let log_path = dir.join("server.log");
        let mut log = std::fs::File::create(&log_path)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", log_path.display())))?;
        let mut cmd = Command::new(webhook);
        cmd.args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--allow-private",
            "--store",
        ])
        .arg(dir.join("store.redb"));
        println!("starting {} ({TOKEN_VAR} set)", describe(&cmd));
        let mut child = cmd
            .env(TOKEN_VAR, token)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Failure::new(format!("could not start {}: {e}", webhook.display())))?;
        let stderr = child.stderr.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let Some(stderr) = stderr else { return };
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .strip_prefix("listening on http://")
                    .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stopped: false,
        };
        match rx.recv_timeout(START_DEADLINE) {
            Ok(addr) => {
                server.addr = addr;
                println!("webhook serve is listening on http://{addr}");
                Ok(server)
            }
            Err(_) => {
                let _ = server.stop();
                Err(Failure::new(format!(
                    "webhook serve did not start within {} s; see {}",
                    START_DEADLINE.as_secs(),
                    log_path.display()
                )))
            }
        }
    }

    /// SIGTERM, up to [`STOP_GRACE`] to drain, then kill. A server that needed killing
    /// or exited with an error fails the step.
    fn stop(&mut self) -> TaskResult {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stdin(Stdio::null())
            .status();
        match wait_for(&mut self.child, STOP_GRACE)? {
            Some(status) if status.success() => {
                println!("webhook serve stopped on SIGTERM");
                Ok(())
            }
            Some(status) => Err(Failure::new(format!(
                "webhook serve exited with {status} after SIGTERM"
            ))),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(Failure::new(format!(
                    "webhook serve did not stop within {} s of SIGTERM and was killed",
                    STOP_GRACE.as_secs()
                )))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 exchange with `Connection: close`: the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Result<(u16, String), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("{method} {path}: {e}"));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(fail)?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n"
    );
    if let Some(body) = body {
        let _ = write!(
            request,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(fail)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::new(format!("{method} {path}: no HTTP status in the answer")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// [`http`], expecting `want`.
fn expect(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
    want: u16,
) -> Result<String, Failure> {
    let (status, answer) = http(addr, method, path, token, body)?;
    if status == want {
        Ok(answer)
    } else {
        Err(Failure::new(format!(
            "seeding: {method} {path} answered {status}, not {want}: {answer}"
        )))
    }
}

/// The first `"field":"value"` string of a JSON text (our ids hold no escapes).
fn json_string(json: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\":\"");
    let start = json.find(&key)? + key.len();
    let len = json[start..].find('"')?;
    Some(json[start..start + len].to_owned())
}

/// What the seeding made, for the path parameters.
#[derive(Debug)]
struct Seed {
    org: String,
    token_id: String,
    event_endpoint: String,
    domain_endpoint: String,
    standard_endpoint: String,
    /// For `DELETE …/endpoints/{id}` alone, so the others keep theirs.
    doomed_endpoint: String,
    event_id: String,
    failed_delivery: String,
}

fn field(json: &str, name: &str, what: &str) -> Result<String, Failure> {
    json_string(json, name)
        .ok_or_else(|| Failure::new(format!("seeding: {what} has no `{name}`: {json}")))
}

/// Creates what the operations find: an organization with a secret and a token, an
/// endpoint of each style, a message to each and a failed delivery.
fn seed(addr: SocketAddr, token: &str, sink: SocketAddr) -> Result<Seed, Failure> {
    let org = "acme";
    expect(
        addr,
        "POST",
        "/v1/organizations",
        token,
        Some(r#"{"id":"acme","name":"Acme Payments"}"#),
        201,
    )?;
    let base = format!("/v1/organizations/{org}");
    expect(
        addr,
        "PUT",
        &format!("{base}/secret"),
        token,
        Some(r#"{"secret":"an organization secret of some length"}"#),
        204,
    )?;
    let issued = expect(addr, "POST", &format!("{base}/tokens"), token, None, 201)?;
    let token_id = field(&issued, "id", "the issued token")?;

    let endpoints = format!("{base}/endpoints");
    let event = expect(
        addr,
        "POST",
        &endpoints,
        token,
        Some(&format!(
            r#"{{"url":"http://{sink}/event","style":"event","event_types":["transaction.confirmed"],"description":"seeded: event style"}}"#
        )),
        201,
    )?;
    let domain = expect(
        addr,
        "POST",
        &endpoints,
        token,
        Some(&format!(
            r#"{{"url":"http://{sink}/domain","style":"domain","domains":["TRANSACTION"],"description":"seeded: domain style"}}"#
        )),
        201,
    )?;
    // Nothing listens on this port: the one attempt fails and the delivery is `failed`.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Failure::new(format!("cannot pick a closed port: {e}")))?;
    let standard = expect(
        addr,
        "POST",
        &endpoints,
        token,
        Some(&format!(
            r#"{{"url":"http://{closed}/standard","style":"standard","event_types":["transaction.confirmed"],"retry_schedule_seconds":[0],"description":"seeded: standard style, fails"}}"#
        )),
        201,
    )?;
    let doomed = expect(
        addr,
        "POST",
        &endpoints,
        token,
        Some(&format!(
            r#"{{"url":"http://{sink}/doomed","style":"event","event_types":["transaction.confirmed"],"description":"seeded: to be deleted"}}"#
        )),
        201,
    )?;
    let doomed_endpoint = field(&doomed, "id", "the endpoint to delete")?;
    let event_endpoint = field(&event, "id", "the event endpoint")?;
    let domain_endpoint = field(&domain, "id", "the domain endpoint")?;
    let standard_endpoint = field(&standard, "id", "the standard endpoint")?;

    let messages = format!("{base}/messages");
    let published = expect(
        addr,
        "POST",
        &messages,
        token,
        Some(
            r#"{"type":"transaction.confirmed","entity_id":"tx-1","data":{"amount":"12.50","currency":"EUR"}}"#,
        ),
        202,
    )?;
    let event_id = field(&published, "event_id", "the published event")?;
    expect(
        addr,
        "POST",
        &messages,
        token,
        Some(
            r#"{"domain":"TRANSACTION","data":{"id":"tx-1","status":"CONFIRMED","amount":"12.50"}}"#,
        ),
        202,
    )?;

    // The delivery to the closed port fails after its one attempt (bounded wait).
    let list = format!("{base}/deliveries?endpoint_id={standard_endpoint}");
    let started = Instant::now();
    let failed_delivery = loop {
        let page = expect(addr, "GET", &list, token, None, 200)?;
        if page.contains(r#""status":"failed""#) {
            break field(&page, "id", "the failed delivery")?;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(Failure::new(format!(
                "seeding: the delivery to the closed port did not fail within 30 s: {page}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Ok(Seed {
        org: org.to_owned(),
        token_id,
        event_endpoint,
        domain_endpoint,
        standard_endpoint,
        doomed_endpoint,
        event_id,
        failed_delivery,
    })
}

impl Seed {
    /// `schemathesis.toml` for the examples, coverage and fuzzing phases: the admin token
    /// from the environment, and the seeded ids as the path parameters of the operations
    /// that take them (one endpoint for `DELETE` alone, so that the others keep theirs).
    /// Entries select operations by id: Schemathesis joins an entry's `include-*` keys
    /// with "or", so a path and a method would select too much.
    fn config(&self) -> String {
        let mut text = format!(
            "{}\n[parameters]\n\"path.org\" = {}\n",
            stateful_config(),
            toml_string(&self.org)
        );
        let by_operation: [(&str, &str, &str); 8] = [
            (
                "\"get_endpoint\", \"update_endpoint\"",
                "id",
                &self.event_endpoint,
            ),
            ("\"delete_endpoint\"", "id", &self.doomed_endpoint),
            (
                "\"pause_endpoint\", \"resume_endpoint\", \"rotate_endpoint_secret\"",
                "id",
                &self.domain_endpoint,
            ),
            ("\"redrive_endpoint\"", "id", &self.standard_endpoint),
            ("\"get_message\"", "event_id", &self.event_id),
            ("\"get_delivery\"", "id", &self.failed_delivery),
            ("\"redrive_delivery\"", "id", &self.failed_delivery),
            ("\"revoke_token\"", "token_id", &self.token_id),
        ];
        for (operations, name, value) in by_operation {
            let _ = write!(
                text,
                "\n[[operations]]\ninclude-operation-id = [{operations}]\n\
                 parameters = {{ \"path.{name}\" = {} }}\n",
                toml_string(value)
            );
        }
        text
    }
}

/// `schemathesis-stateful.toml` for the stateful phase: the admin token only, so that
/// every id comes from the links (a configured id would win over the link's).
fn stateful_config() -> String {
    format!(
        "# Written by `cargo xtask test` (xtask/src/openapi.rs) for one run.\n\
         [auth.openapi.bearer]\n\
         bearer = \"${{{TOKEN_VAR}}}\"\n\n\
         # Nothing kept between runs (and no `.schemathesis/` in the work tree).\n\
         [cache]\n\
         enabled = false\n"
    )
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_the_pinned_major_and_recent_enough_are_accepted() {
        assert_eq!(
            parse_version("schemathesis, version 4.32.5"),
            Some((4, 32, 5))
        );
        assert_eq!(
            parse_version("schemathesis, version 4.40"),
            Some((4, 40, 0))
        );
        assert_eq!(parse_version("nonsense"), None);
        assert!(acceptable((4, 32, 5)));
        assert!(acceptable((4, 33, 0)));
        assert!(!acceptable((4, 31, 9)));
        assert!(!acceptable((5, 0, 0)));
        assert!(!acceptable((3, 99, 0)));
    }

    #[test]
    fn a_missing_schemathesis_names_the_one_command_to_run() {
        assert_eq!(
            install_command(Path::new("/p/target/schemathesis-venv")),
            "python3 -m venv /p/target/schemathesis-venv && \
             /p/target/schemathesis-venv/bin/python -m pip install 'schemathesis~=4.32'"
        );
    }

    #[test]
    fn ids_are_read_from_the_first_matching_field() {
        let json = r#"{"event_id":"e-1","deliveries":[{"id":"d-1","endpoint_id":"x"}]}"#;
        assert_eq!(json_string(json, "id").as_deref(), Some("d-1"));
        assert_eq!(json_string(json, "event_id").as_deref(), Some("e-1"));
        assert_eq!(json_string(json, "missing"), None);
    }

    #[test]
    fn the_config_names_each_seeded_id_and_no_token() {
        let seed = Seed {
            org: "acme".into(),
            token_id: "tok_1".into(),
            event_endpoint: "ep-e".into(),
            domain_endpoint: "ep-d".into(),
            standard_endpoint: "ep-s".into(),
            doomed_endpoint: "ep-x".into(),
            event_id: "ev-1".into(),
            failed_delivery: "dl-1".into(),
        };
        let config = seed.config();
        assert!(config.contains("bearer = \"${WEBHOOK_ADMIN_TOKEN}\""));
        assert!(config.contains("\"path.org\" = \"acme\""));
        for id in ["tok_1", "ep-e", "ep-d", "ep-s", "ep-x", "ev-1", "dl-1"] {
            assert!(
                config.contains(&format!("= \"{id}\" }}")),
                "{id} in {config}"
            );
        }
        assert_eq!(toml_string("a\"b\\c"), r#""a\"b\\c""#);
    }

    #[test]
    fn the_command_line_runs_every_phase_with_the_checks_and_bounds() {
        let cmd = schemathesis_command(
            Path::new("/v/bin/schemathesis"),
            &PASSES[0],
            Path::new("/t/openapi/schemathesis.toml"),
            SocketAddr::from(([127, 0, 0, 1], 8000)),
            Path::new("/t/openapi"),
        );
        let shown = describe(&cmd);
        assert!(shown.starts_with(
            "schemathesis --config-file /t/openapi/schemathesis.toml run \
             http://127.0.0.1:8000/openapi.json --checks not_a_server_error,"
        ));
        for part in [
            "response_schema_conformance",
            "status_code_conformance",
            "content_type_conformance",
            "--phases examples,coverage,fuzzing ",
            "--max-examples 100",
        ] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
        let phases: Vec<&str> = PASSES.iter().flat_map(|p| p.phases.split(',')).collect();
        assert_eq!(phases, ["examples", "coverage", "fuzzing", "stateful"]);
        assert!(
            !PASSES[1].seeded_ids,
            "links give the stateful phase its ids"
        );
    }
}
