//! End-to-end tests across the webhook crates live in `tests/tests/`.
//!
//! This library holds what those tests share:
//!
//! | module | holds |
//! |---|---|
//! | [`receiver`] | [`CountingReceiver`](receiver::CountingReceiver): the real `WebhookLayer` with dedup on 127.0.0.1, counting every request and handler call |
//! | [`faults`] | [`FaultyServer`](faults::FaultyServer): a raw HTTP/1.1 front that answers 503, stalls, resets connections and goes down on command |
//! | [`process`] | [`ChildProcess`](process::ChildProcess): a child program whose stdout lines are read with deadlines, killed with SIGKILL |
//! | [`crash`] | the protocol of the crash tests' child program: shared settings, start and `ready`, `acked` lines, kill and graceful stop; the two-node SIGKILL scenario every shared store runs |
//! | [`outage`] | the store-outage scenario every store behind a server runs: connections dropped, the server killed and started again |
//! | [`sender`] | [`loopback_sender`](sender::loopback_sender) and [`wait_finished`](sender::wait_finished): a test sender, and a bounded wait for finished deliveries |
//! | [`server`] | [`HttpServer`](server::HttpServer), a hyper server around any service, and the [`accept_loop`](server::accept_loop) every test server shares |
//! | [`fuzzing`] | one function per fuzz target, shared by `fuzz/` and the corpus replay test |
//!
//! The child programs of the crash tests are this package's binaries (`src/bin/`).
//!
//! ```
//! use webhook_e2e::SplitMix64;
//!
//! let mut a = SplitMix64::new(7);
//! let mut b = SplitMix64::new(7);
//! assert_eq!(a.next_u64(), b.next_u64()); // the same seed gives the same faults
//! assert!(a.chance(1.0) && !a.chance(0.0));
//! ```

pub mod crash;
pub mod faults;
pub mod fuzzing;
pub mod outage;
pub mod process;
pub mod receiver;
pub mod sender;
pub mod server;

/// A small seeded random number generator (SplitMix64), so that fault patterns repeat
/// from run to run without a `rand` dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p` (0 to 1).
    pub fn chance(&mut self, p: f64) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}
