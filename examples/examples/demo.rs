//! `cargo xtask demo [--scale N]`: a wallet platform's story delivered to three receivers
//! over the embedded durable store, with retries, dedup and a forged request, ending with
//! a per-endpoint summary table. See `webhook_examples::demo`.

use std::process::ExitCode;

use webhook_examples::demo::{Options, run};

#[tokio::main]
async fn main() -> ExitCode {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|n| n.parse().ok())) {
            ("--scale", Some(n)) => options.scale = n,
            _ => {
                eprintln!("usage: demo [--scale N]   (N customers, default 3)");
                return ExitCode::from(2);
            }
        }
    }
    eprintln!(
        "webhook demo: {} customer(s) through one wallet platform, three wire styles\n",
        options.scale
    );
    match run(options).await {
        Ok(summary) => {
            println!("\n{}", summary.table());
            println!(
                "{} events published in {:.1} s; every endpoint: published = delivered + failed, delivered = handled + deduplicated: {}",
                summary.events,
                summary.elapsed.as_secs_f64(),
                if summary.adds_up() { "yes" } else { "NO" }
            );
            println!("retried: deliveries whose first attempt got a 503 from the flaky receiver");
            println!(
                "deduplicated: the same wallet.created published twice within 60 s (event style dedups on idempotencyKey)"
            );
            println!("rejected: a request signed with an attacker's secret");
            if summary.adds_up() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}
