//! Graceful shutdown: a serve loop that tells every open stream the server is stopping and
//! exits within a bounded time however its clients behave.

use std::future::{Future, IntoFuture};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

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
/// connections, every open stream gets an `error` (code `shutdown`) and `[DONE]`, and
/// the connections drain. Returns at most `timeout` after `stop`, closing whatever is
/// still open by then (a client that does not read, a request body that never ends).
pub async fn serve_until<F>(
    listener: TcpListener,
    router: Router,
    streams: Arc<OpenStreams>,
    stop: F,
    timeout: Duration,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let trigger = {
        let streams = Arc::clone(&streams);
        async move {
            stop.await;
            let open = streams.begin_shutdown();
            tracing::info!(open_streams = open, "shutting down");
        }
    };
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(trigger)
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => {
            tracing::info!("shut down");
            return result;
        }
        () = streams.closing() => {}
    }
    match tokio::time::timeout(timeout, &mut server).await {
        Ok(result) => {
            tracing::info!("shut down");
            result
        }
        Err(_) => {
            let closed = streams.close_all();
            tracing::warn!(
                timeout_secs = timeout.as_secs_f64(),
                closed_streams = closed,
                "shutdown timeout reached; dropping the connections still open"
            );
            Ok(())
        }
    }
}
