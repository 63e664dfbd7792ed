//! Test support shared by the webhook crates' tests: a throwaway `redis-server`
//! ([`RedisServer`]) and a throwaway PostgreSQL server ([`PostgresServer`]).
//!
//! Tests never use a server someone else started: each `start` launches the server on a
//! free loopback port in a temporary directory and stops it on drop. When the server is
//! not installed the call fails loudly with the command that installs it; these tests
//! never skip silently.
//!
//! ```no_run
//! let redis = webhook_testkit::RedisServer::start();
//! println!("{}", redis.url()); // redis://127.0.0.1:<port>/
//! let postgres = webhook_testkit::PostgresServer::start();
//! println!("{}", postgres.url()); // postgres://postgres@127.0.0.1:<port>/postgres
//! ```

mod postgres;
mod redis;

use std::io;
use std::net::{Ipv4Addr, TcpListener};

pub use self::postgres::{PostgresServer, postgres_bin_dir};
pub use self::redis::{RedisServer, redis_server_binary};

/// A loopback port that was free a moment ago.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
