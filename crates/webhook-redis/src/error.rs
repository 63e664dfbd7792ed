//! [`Error`]: a Redis failure, classified by what the caller can do about it.

use std::fmt;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// A Redis call failed. Opaque; ask it what kind of failure it was.
///
/// ```
/// use webhook_redis::Error;
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let error = Error::from(webhook_redis::redis::RedisError::from(refused));
/// assert!(error.is_unavailable());
/// assert!(!error.is_timeout());
/// ```
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    source: Box<dyn std::error::Error + Send + Sync>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Unreachable, dropped, not ready: a later call may work.
    Unavailable,
    /// No answer in time (also unavailable).
    Timeout,
    /// The URL or the credentials are wrong.
    Config,
    /// Redis refused or failed the command (script error, wrong type, out of memory).
    Command,
}

impl Error {
    /// The configuration is unusable (a URL that does not parse).
    pub(crate) fn config(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: Kind::Config,
            source: source.into(),
        }
    }

    /// A call did not finish in time.
    pub(crate) fn timeout(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: Kind::Timeout,
            source: source.into(),
        }
    }

    /// Whether Redis could not be used right now and a later call may work: the
    /// connection was refused or dropped, the call timed out, or the server is loading
    /// its data after a restart or is a read-only replica after a failover.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self.kind, Kind::Unavailable | Kind::Timeout)
    }

    /// Whether the call (or the connection attempt) ran out of time.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// Whether the URL or the credentials are wrong: retrying will not help.
    #[must_use]
    pub fn is_config(&self) -> bool {
        self.kind == Kind::Config
    }

    /// Whether Redis answered with an error to the command itself (a script error, a
    /// key of the wrong type, out of memory): a bug or a misconfigured server.
    #[must_use]
    pub fn is_command(&self) -> bool {
        self.kind == Kind::Command
    }
}

impl From<RedisError> for Error {
    fn from(error: RedisError) -> Self {
        let kind = if error.is_timeout() {
            Kind::Timeout
        } else if error.is_io_error()
            || error.is_connection_refusal()
            || error.is_connection_dropped()
            || matches!(
                error.kind(),
                ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::ReadOnly
                )
            )
            || error.code() == Some("BUSY")
        {
            Kind::Unavailable
        } else if matches!(
            error.kind(),
            ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
        ) || error.code() == Some("NOAUTH")
            || error.code() == Some("WRONGPASS")
        {
            Kind::Config
        } else {
            Kind::Command
        };
        Self {
            kind,
            source: Box::new(error),
        }
    }
}

impl From<tokio::time::error::Elapsed> for Error {
    fn from(elapsed: tokio::time::error::Elapsed) -> Self {
        Self::timeout(elapsed)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Unavailable => "redis is unavailable",
            Kind::Timeout => "redis did not answer in time",
            Kind::Config => "redis configuration is unusable",
            Kind::Command => "redis refused the command",
        };
        write!(f, "{what}: {}", self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn server(code: &str) -> Error {
        // A server's error reply, as the parser reads it off the wire.
        let reply = format!("-{code} detail\r\n");
        let value = redis::parse_redis_value(reply.as_bytes()).expect("a valid reply");
        Error::from(value.extract_error().expect_err("an error reply"))
    }

    #[test]
    fn errors_are_classified_by_what_helps() {
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
        ] {
            let error = Error::from(RedisError::from(io::Error::from(kind)));
            assert!(error.is_unavailable(), "{kind:?}");
            assert!(!error.is_timeout() && !error.is_config() && !error.is_command());
        }
        let timed_out = Error::from(RedisError::from(io::Error::from(io::ErrorKind::TimedOut)));
        assert!(timed_out.is_timeout() && timed_out.is_unavailable());

        for code in ["LOADING", "READONLY", "BUSY", "TRYAGAIN", "MASTERDOWN"] {
            assert!(server(code).is_unavailable(), "{code}");
        }
        for code in ["NOAUTH", "WRONGPASS"] {
            assert!(server(code).is_config(), "{code}");
        }
        for code in ["ERR", "WRONGTYPE", "OOM", "NOSCRIPT"] {
            let error = server(code);
            assert!(error.is_command() && !error.is_unavailable(), "{code}");
        }
        assert!(
            server("LOADING")
                .to_string()
                .starts_with("redis is unavailable")
        );
    }
}
