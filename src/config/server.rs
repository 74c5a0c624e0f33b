//! `[server]`: where replaydesk listens and how it treats connections: the listen address, the public
//! URL platforms reach it at, the largest body, and the timeouts and connection cap that keep a slow or
//! hostile client from holding the server.
//!
//! Checks: `listen` is a socket address, `public_url` an http(s) URL, `max_body_bytes` at least 1024,
//! the header and idle timeouts more than 0s, `max_connections` at least 1.

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;

use super::{ConfigError, Interval, at_least_one, check_url, invalid, more_than_zero};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// The public base URL platforms reach us at (used in manifests and setup output).
    pub public_url: Option<String>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Longest time one inbound request may take before it is answered 408.
    pub request_timeout: Interval,
    /// How long a graceful shutdown waits for in-flight requests and jobs.
    pub shutdown_grace: Interval,
    /// How long a request's whole head (request line and headers) may take, from the connection's
    /// opening (its first request) or from the request's first byte (a kept-alive connection's next
    /// ones); slower connections are closed.
    pub header_read_timeout: Interval,
    /// How long a connection may stay open with no request in progress and no byte moving (a kept-alive
    /// one between requests, a client not reading our answer) before it is closed.
    pub idle_timeout: Interval,
    /// Connections served at once; more wait in the kernel's accept queue until one closes.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            max_body_bytes: 256 * 1024,
            request_timeout: Interval(Duration::from_secs(15)),
            shutdown_grace: Interval(Duration::from_secs(20)),
            header_read_timeout: Interval(Duration::from_secs(10)),
            idle_timeout: Interval(Duration::from_secs(60)),
            max_connections: 10_000,
        }
    }
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.listen", "must be an address like 127.0.0.1:8080"))?;
        if self.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        more_than_zero("server.header_read_timeout", self.header_read_timeout)?;
        more_than_zero("server.idle_timeout", self.idle_timeout)?;
        at_least_one("server.max_connections", self.max_connections)?;
        check_url("server.public_url", self.public_url.as_deref())
    }
}
