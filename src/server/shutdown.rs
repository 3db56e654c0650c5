//! Graceful shutdown: a serve loop that tells every open stream the server is stopping and
//! exits within a bounded time however its clients behave.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::config::ConnectionLimits;
use super::conn::{self, Gate};
use crate::api::OpenStreams;

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// Serves `router` on `listener` until `stop` resolves, then shuts down: no new
/// connections, every open stream gets an `error` (code `shutdown`) and `[DONE]`, the
/// connections drain and the replay logs are written out. Returns at most `timeout` after `stop`, closing whatever is
/// still open by then (a client that does not read, a request body that never ends).
///
/// The loop drives hyper's HTTP/1 connections itself rather than through `axum::serve`:
/// that one clones the router's route tables for every connection and wraps each in
/// HTTP/2 detection, a third of what an idle stream costs (docs/BENCHMARKS.md). Here a
/// connection shares the router (one `Arc`) and carries only hyper's own state.
///
/// Each connection is served under `limits` (header timeout, head size); past
/// `limits.max_connections` open ones, a new connection gets a 503 and is closed.
pub async fn serve_until<F>(
    listener: TcpListener,
    router: Router,
    streams: Arc<OpenStreams>,
    stop: F,
    timeout: Duration,
    limits: &ConnectionLimits,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Dropping `shutdown` tells every connection to finish its response and close;
    // `drained` resolves once every connection task has dropped its `Receiver`.
    let (shutdown, shutdown_rx) = watch::channel(());
    let (drained, drained_rx) = watch::channel(());
    let http = conn::http1_builder(limits);
    let gate = Gate::new(limits.max_connections);
    let mut accept_log = AcceptLog::default();
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(&e, &mut accept_log).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // SSE frames are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let Some(admitted) = gate.admit() else {
            gate.refuse(tcp);
            continue;
        };
        let conn =
            http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone()));
        let mut shutdown_rx = shutdown_rx.clone();
        let drained_rx = drained_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => log_connection_end(result),
                _ = shutdown_rx.changed() => {
                    conn.as_mut().graceful_shutdown();
                    log_connection_end(conn.await);
                }
            }
            drop(drained_rx);
            drop(admitted);
        });
    }
    drop(listener);
    let deadline = tokio::time::Instant::now() + timeout;
    let open = streams.begin_shutdown();
    tracing::info!(open_streams = open, "shutting down");
    drop(shutdown);
    drop(drained_rx);
    if tokio::time::timeout_at(deadline, drained.closed())
        .await
        .is_err()
    {
        let closed = streams.close_all();
        tracing::warn!(
            timeout_secs = timeout.as_secs_f64(),
            closed_streams = closed,
            "shutdown timeout reached; dropping the connections still open"
        );
    }
    // The replay logs end with what the clients got (a resume on another instance reads
    // the same), unless the time is up.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if streams.recorded(left).await {
        tracing::info!("shut down");
    } else {
        tracing::warn!("shutdown timeout reached with replay logs still being written");
    }
    Ok(())
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A failed `accept`: a connection reset before it was taken is the client's business;
/// anything else (out of file descriptors, most often) is retried after a pause, so the
/// loop does not spin while the condition lasts, and logged once per
/// [`ACCEPT_LOG_INTERVAL`] with the count of failures since.
async fn accept_failed(e: &io::Error, log: &mut AcceptLog) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    log.failed += 1;
    let now = tokio::time::Instant::now();
    if log.last.is_none_or(|at| now - at >= ACCEPT_LOG_INTERVAL) {
        tracing::error!(error = %e, failures = log.failed, "accept failed; retrying every second");
        log.last = Some(now);
        log.failed = 0;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Seconds between two "accept failed" lines.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct AcceptLog {
    last: Option<tokio::time::Instant>,
    failed: u64,
}
