//! The accept loop: how many connections are served at once, and how long a connection may sit without
//! doing its part, so slow or idle clients cannot starve the server of file descriptors or tasks.
//!
//! `axum::serve` accepts without bound and never closes a connection whose client stops sending: 20,000
//! half-sent connections used to exhaust the file limit and leave `/healthz` and signed webhooks
//! unanswered. Here, with hyper's HTTP/1 connection builder (the same hyper axum uses):
//!
//! - **`server.max_connections`** (default 10,000): each connection holds a semaphore permit; at the
//!   limit the loop stops accepting and new connections wait in the kernel's backlog until one closes.
//!   `serve` raises the process's open-file limit to its hard limit at start-up
//!   ([`raise_file_limit`]) and warns when `max_connections` does not fit under it.
//! - **`server.header_read_timeout`** (default 10 s): a new connection's first request head (request
//!   line and headers) must be complete within this of the connection's opening, and a kept-alive
//!   connection's next one within this of its first byte; else the connection is closed (nothing is
//!   answered: the client has not finished asking). So a client that connects and says nothing, or
//!   stops halfway, holds a slot for at most this long. Bodies are bounded by `server.request_timeout`
//!   (408), as before.
//! - **`server.idle_timeout`** (default 60 s): a kept-alive connection with no request in progress and
//!   no byte moving in either direction (between requests, or a client that stops reading our answer)
//!   is closed after this. Keep it above your load balancer's own idle timeout (AWS ALB and nginx: 60 s
//!   by default) so the balancer, not us, closes the connections it keeps alive; otherwise it may send a
//!   request on a connection we are closing.
//!
//! These are Go's `ReadHeaderTimeout` and `IdleTimeout`. hyper's own `header_read_timeout` is not used:
//! it also runs while a kept-alive connection waits for its next request, so it would close those after
//! 10 s instead of 60. Both clocks are kept by [`Watched`], a wrapper around the socket that sees every
//! byte, told by the service when a request is being handled.
//!
//! Graceful shutdown as before: stop accepting, close idle connections, let in-flight requests finish
//! (hyper-util's `GracefulShutdown`).

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::Duration,
};

use axum::{Router, extract::Request};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::{Instant, Sleep},
};
use tower::ServiceExt;

use crate::config::ServerConfig;

/// The connection limits of `[server]`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl From<&ServerConfig> for Limits {
    fn from(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: server.header_read_timeout.0,
            idle_timeout: server.idle_timeout.0,
            max_connections: server.max_connections,
        }
    }
}

/// Raises the soft open-file limit to the hard limit; warns when `max_connections` (plus room for the
/// store, upstream calls and logs) does not fit under it.
pub fn raise_file_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let needed = u64::try_from(max_connections)
                .unwrap_or(u64::MAX)
                .saturating_add(256);
            if limit < needed {
                tracing::warn!(
                    file_limit = limit,
                    max_connections,
                    "server.max_connections does not fit under the open-file limit: lower it, or raise the hard limit (ulimit -Hn)"
                );
            } else {
                tracing::debug!(file_limit = limit, "open-file limit");
            }
        }
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then shuts down gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own clocks (see the module docs) instead of hyper's header timer.
    builder.keep_alive(true).header_read_timeout(None);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors or a connection reset before we took it: go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let phase = Arc::new(Mutex::new(Phase::new(limits.header_read_timeout)));
        let io = TokioIo::new(Watched::new(stream, phase.clone(), limits));
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = Busy::start(phase.clone());
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(axum::body::Body::new)).await;
                drop(busy);
                response
            }
        });
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            // A closed or timed-out connection is the client's business; nothing to log.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Where a connection stands, for its clocks.
#[derive(Debug)]
struct Phase {
    /// Last byte read or written, or the end of the last request.
    last_activity: Instant,
    /// A request is being handled (between its head and its answer).
    busy: bool,
    /// The current request head must be complete by then (set at the connection's opening, and at the
    /// first byte of each later request).
    head_deadline: Option<Instant>,
    /// The connection's task, when it found the socket not ready while busy: woken when the request is
    /// done, so its clocks start (hyper polls a blocked socket again only when woken).
    waiting: Option<Waker>,
}

impl Phase {
    /// A new connection: its first request head is due `header_read_timeout` from now.
    fn new(header_read_timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            last_activity: now,
            busy: false,
            head_deadline: Some(now + header_read_timeout),
            waiting: None,
        }
    }
}

/// Marks a connection busy while the service handles one request.
struct Busy {
    phase: Arc<Mutex<Phase>>,
}

impl Busy {
    fn start(phase: Arc<Mutex<Phase>>) -> Self {
        {
            let mut p = phase.lock().unwrap_or_else(|e| e.into_inner());
            p.busy = true;
            p.head_deadline = None;
        }
        Self { phase }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let waiting = {
            let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
            p.busy = false;
            p.last_activity = Instant::now();
            p.waiting.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

/// The socket, with the header-read and idle clocks (see the module docs).
struct Watched {
    stream: TcpStream,
    phase: Arc<Mutex<Phase>>,
    limits: Limits,
    timer: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(stream: TcpStream, phase: Arc<Mutex<Phase>>, limits: Limits) -> Self {
        Self {
            stream,
            phase,
            limits,
            timer: Box::pin(tokio::time::sleep(limits.idle_timeout)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = Instant::now();
        let mut p = self.lock();
        p.last_activity = now;
        // Bytes read while busy are the request's body (or, rarely, a pipelined request's head, which
        // then has idle_timeout rather than header_read_timeout).
        if !p.busy && p.head_deadline.is_none() {
            p.head_deadline = Some(now + self.limits.header_read_timeout);
        }
    }

    /// After a write was polled: bytes written count as activity; a socket not ready runs the clocks.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.lock().last_activity = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_deadline(cx).map(|r| r.map(|()| 0)),
        }
    }

    /// When the connection must be closed if nothing happens first; `None` while a request is handled
    /// (`server.request_timeout` bounds that).
    fn deadline(&self, cx: &Context<'_>) -> Option<Instant> {
        let mut p = self.lock();
        if p.busy {
            p.waiting = Some(cx.waker().clone());
            return None;
        }
        let idle = p.last_activity + self.limits.idle_timeout;
        Some(p.head_deadline.map_or(idle, |head| head.min(idle)))
    }

    /// Called when the socket is not ready: `Pending` (the timer will wake us), or an error once the
    /// connection's time is up.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(deadline) = self.deadline(cx) else {
            return Poll::Pending;
        };
        if deadline <= Instant::now() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "header_read_timeout or idle_timeout",
            )));
        }
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "header_read_timeout or idle_timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.on_read(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.written(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
