//! The `transactions` example: the committed confirmation is delivered once, the one
//! rolled back by the platform's own constraint is never sent.

#![allow(clippy::unwrap_used)]

use webhook_examples::transactions::run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_confirmation_is_sent_once_and_the_rolled_back_one_never() {
    let server = tokio::task::spawn_blocking(webhook_testkit::PostgresServer::start)
        .await
        .unwrap();
    let summary = run(&server.url()).await.unwrap();
    let [(small, small_status), (large, large_status)] = &summary.statuses[..] else {
        panic!("two transactions: {summary:?}")
    };
    assert_eq!(small_status, "CONFIRMED");
    assert_eq!(
        large_status, "PENDING",
        "the ledger constraint rolled it back"
    );
    assert_eq!(summary.delivered, vec![small.clone()], "not {large}");
}
