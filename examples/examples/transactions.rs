//! `cargo run -p webhook-examples --example transactions`: a transaction's status update
//! and its `transaction.confirmed` webhook committed together (see
//! `webhook_examples::transactions`).
//!
//! Uses `DATABASE_URL` when set (its tables `example_transactions`, `example_ledger` and
//! schema `webhook_example` are created when missing); otherwise starts a throwaway
//! PostgreSQL server (`initdb` and `pg_ctl` must be installed: `apt-get install -y
//! postgresql`).

use std::process::ExitCode;

use webhook_examples::transactions::run;

#[tokio::main]
async fn main() -> ExitCode {
    let throwaway;
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            eprintln!("DATABASE_URL is not set: starting a throwaway PostgreSQL server");
            throwaway = webhook_testkit::PostgresServer::start();
            throwaway.url()
        }
    };
    match run(&url).await {
        Ok(summary) => {
            for (id, status) in &summary.statuses {
                println!("{id}: {status}");
            }
            println!("webhooks delivered for: {:?}", summary.delivered);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("transactions example failed: {error}");
            ExitCode::FAILURE
        }
    }
}
