//! `cargo xtask demo` runs to completion and its numbers add up.

#![allow(clippy::unwrap_used)]

use webhook_examples::demo::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_completes_and_its_numbers_add_up() {
    let summary = run(Options {
        scale: 2,
        progress: false,
    })
    .await
    .unwrap();
    println!("{}", summary.table());
    assert!(
        summary.adds_up(),
        "published = delivered + failed = handled + deduplicated + failed, per endpoint"
    );
    let [event, domain, standard] = &summary.endpoints[..] else {
        panic!("three endpoints")
    };
    // Two customers: 12 event-style events each plus the repeated wallet.created; 22 domain
    // updates each (21 in order, one late).
    assert_eq!(
        (event.published, standard.published, domain.published),
        (25, 25, 44)
    );
    for endpoint in &summary.endpoints {
        assert_eq!(
            endpoint.failed, 0,
            "{}: the flaky receiver only fails first attempts",
            endpoint.style
        );
        assert!(
            endpoint.retried > 0,
            "{}: some first attempts failed, so retries show",
            endpoint.style
        );
        assert!(endpoint.p50_ms <= endpoint.p99_ms);
    }
    assert_eq!(
        event.deduplicated, 1,
        "the repeated wallet.created shares its idempotency key"
    );
    assert_eq!(
        standard.deduplicated, 0,
        "Standard Webhooks dedups on webhook-id, new per event"
    );
    assert_eq!(
        (event.rejected, domain.rejected, standard.rejected),
        (1, 0, 0),
        "the forged request"
    );
    assert_eq!(
        (event.stale, domain.stale, standard.stale),
        (0, 2, 0),
        "each customer's late, older transaction update is recognised and skipped"
    );
    assert!(summary.table().contains("| stale, skipped |"));
    assert_eq!(summary.events, 2 * 34 + 1);
}
