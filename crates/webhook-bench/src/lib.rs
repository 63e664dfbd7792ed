//! Benchmarks for the webhook toolkit, each measured next to a baseline in the same run on
//! the same machine. `BENCHMARKS.md` at the repository root has the latest numbers.
//!
//! | what | how to run | compares |
//! |---|---|---|
//! | `benches/signatures.rs` | `cargo bench -p webhook-bench --bench signatures` | sign/verify per scheme vs the raw ring primitive; Standard Webhooks verify vs the `svix` and `standardwebhooks` crates |
//! | `benches/core_ops.rs` | `cargo bench -p webhook-bench --bench core_ops` | dedup check-and-insert, idempotency-key derivation, redaction |
//! | the `load` binary | `cargo xtask bench [--quick]` | end-to-end deliveries/s vs a plain hyper client; messages/s published over the HTTP API and delivered, vs the same client; receiver requests/s vs the bare handler; 1,000,000 queued deliveries |
//!
//! The load benchmark prints progress on stderr, a markdown table on stdout, and writes
//! `target/bench/report.json` (under `CARGO_TARGET_DIR` when set): one object per
//! scenario with `name`, `ops_per_sec`, `p50_ms`, `p99_ms`, `baseline_ops_per_sec` and
//! `ratio`. Its scenarios are in [`scenario`].
//!
//! # Example
//!
//! The pieces the scenarios are made of, on a small scale: a counting server on
//! 127.0.0.1 and a plain hyper client posting numbered event bodies to it.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use webhook_bench::http::{Tracker, counting_server, exchange, loopback_listener, plain_client};
//! use webhook_bench::payload::Template;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tracker = Arc::new(Tracker::new(100));
//! let server = counting_server(loopback_listener().await?, Arc::clone(&tracker));
//! let client = plain_client(4);
//! let template = Template::event();
//! for seq in 0..10 {
//!     let request = http::Request::post(server.url())
//!         .body(http_body_util::Full::new(bytes::Bytes::from(template.render(seq))))?;
//!     tracker.mark_sent(seq);
//!     assert!(exchange(&client, request).await?.is_success());
//! }
//! assert!(tracker.wait_for(10, Duration::from_secs(5)).await);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # }).unwrap();
//! ```
//!
//! # Features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `redis` | no | the `e2e-redis` and `e2e-redis-aof` scenarios on `webhook_sender::store::RedisStore` (they start their own `redis-server` through `webhook-testkit`, and fail loudly when it is not installed); without the feature their rows say "skipped" and why |
//!
//! # Design choices
//!
//! - **Baselines run in the same process, on the same runtime, against the same server**
//!   as the thing measured, one right after the other (alternating when `rounds` > 1, the
//!   best of each side kept): only ratios measured side by side are compared, never
//!   numbers from different runs.
//! - **Everything shares two cores.** Load generator, sender, server (and `redis-server`)
//!   run on one machine; a number is the rate of the whole pipeline on 2 cores, which is
//!   why the baselines run the same pipeline minus the component under test.
//! - **End-to-end is closed-loop with a window** of 4 × the HTTP concurrency outstanding
//!   events (see [`scenario::e2e`]): saturating, but bounded, so rate and latency both
//!   mean something. The baseline is closed-loop at the HTTP concurrency itself.
//! - **The receiver's requests are signed before the clock starts**, so signing does not
//!   load the two cores during the measurement; both servers get the same requests.
//! - **The 1,000,000-delivery backlog runs the sender in a child process** (the load
//!   binary's hidden `backlog-sender` subcommand) so that its peak RSS (`VmHWM` from
//!   `/proc/<pid>/status`) is the sender's alone; the dead endpoint is a port bound
//!   without listening (connections refused), which starts listening when it "comes back".
//! - **Latency histograms are fixed-size and lock-free** ([`stats::Histogram`], ~3 %
//!   buckets), so recording never allocates or contends during a run.
//! - **Each row says what bounded it**: the CPU cores the process kept busy during the
//!   window (CPU time ÷ wall time from `/proc/self/stat`; near 2 means CPU-bound, well
//!   below means waiting on fsync or round trips), redb commits per delivery, the backlog
//!   sender's CPU during the drain. `redis-server` runs in its own process and is not in
//!   the sender's CPU figure.
//! - **Redis twice**: `e2e-redis` on a `redis-server` without persistence (the store's
//!   protocol cost) and `e2e-redis-aof` with `appendfsync always` (acknowledged means
//!   durable, comparable with redb's fsynced commits).
//! - **Publishers build their payload per event** (`serde_json::Value`, about 5 % of the
//!   CPU in the memory scenario): that is the application's share of a publish, kept in
//!   the measurement because every real caller pays it.
//! - **Store files go under `target/bench`** (the workspace's disk), never tmpfs, so
//!   redb's fsyncs cost what they cost on the machine's disk.

pub mod http;
pub mod payload;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod system;

use std::path::PathBuf;

/// Where `report.json` and scratch files go: `$CARGO_TARGET_DIR/bench`, else
/// `<workspace>/target/bench`.
#[must_use]
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join("target")
        },
        PathBuf::from,
    );
    target.join("bench")
}
