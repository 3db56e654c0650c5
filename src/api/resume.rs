//! Resumable streams: a search writes every frame into its replay log, and the client's
//! connection reads that log, so a client that comes back with `Last-Event-ID` gets what
//! it missed, then the live rest. The ids carry the stream's secret key (`<key>.<n>`,
//! see [`crate::replay::StreamKey`]): the id alone finds the log, and only for the
//! client that read it.
//!
//! Two tasks per search:
//! - the recorder takes each frame the search produces (ids and bytes as they will go
//!   out) and appends it to the log; it stops the search when no client has been
//!   attached for the linger time, ending the log with `error` (code `abandoned`);
//! - a replayer per connection reads the log after the client's last id and sends it out
//!   with its original ids, heartbeats of its own when idle, and `[DONE]` at the end.
//!
//! Messages about the connection rather than the search (`expired`, `superseded`,
//! `replaced`) go out without an id, so they never move a client's `Last-Event-ID`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::ApiError;
use crate::replay::{error_frame, Entry, LogReader, LogWriter, ReplayError, StreamKey};
use crate::stream::{EventStream, FrameId, QueuedFrame, StreamConfig};

/// `message` of the `error` a search gets when no client came back within the linger.
pub const ABANDONED_MESSAGE: &str = "no client came back for this search; it was stopped";
/// `code` of that `error`.
pub const ABANDONED_CODE: &str = "abandoned";

/// The settings of a connection reading a log: the search's timeout already ends the log.
pub(crate) fn replay_config(config: &StreamConfig) -> StreamConfig {
    StreamConfig {
        timeout: None,
        ..config.clone()
    }
}

/// Records `search` into `writer` until it ends, is abandoned or is replaced, holding
/// `guard` (the search's slot of the concurrency limit, say) until the log is finished.
pub(crate) async fn record<G: Send>(
    mut search: EventStream,
    writer: Box<dyn LogWriter>,
    request_id: Arc<str>,
    guard: G,
) {
    // The last id logged.
    let mut last_id = 0;
    let unattended = writer.unattended();
    tokio::pin!(unattended);
    let abandoned = loop {
        let frame = tokio::select! {
            frame = search.next_frame() => frame,
            () = &mut unattended => break true,
        };
        let (id, body) = match frame {
            Some(QueuedFrame::Numbered { id, body }) => (id, body),
            Some(QueuedFrame::Done) => break false,
            // Closed without `[DONE]`: the server is dropping its streams.
            None => break false,
            Some(QueuedFrame::Unnumbered(_)) => {
                // The search's stream numbers every frame but `[DONE]`.
                tracing::warn!(request_id = %request_id, "unnumbered frame not logged");
                continue;
            }
        };
        tokio::select! {
            appended = writer.append(id, body) => {
                if appended.is_err() {
                    // Replaced by a new search of the same id: this one stops.
                    search.close();
                    return;
                }
                last_id = id;
            }
            // The frame waiting for room is not logged: the `abandoned` error takes its
            // id, so the log has no gap.
            () = &mut unattended => break true,
        }
    };
    let last = abandoned.then(|| {
        // Cancels the search at once: its tasks and engine requests are dropped.
        search.close();
        let body = error_frame(&request_id, ABANDONED_MESSAGE, ABANDONED_CODE);
        (last_id + 1, Bytes::from(body))
    });
    drop(search);
    let _ = writer.finish(last).await;
    drop(guard);
}

/// A connection's stream: `reader`'s frames with their own ids, then `[DONE]` with the
/// next id (so a reconnect with it is told the end was read); `[DONE]` has no id when
/// the log cannot be read to its end (`superseded`, `expired`, ...).
///
/// Its ids are `<key>.<n>`, and it opens with `retry` and the id `<key>.<after>` (see
/// [`EventStream::make_resumable`]), set up before the first frame is read.
pub(crate) fn replay(
    request_id: &str,
    config: StreamConfig,
    mut reader: Box<dyn LogReader>,
    key: &StreamKey,
    after: u64,
    retry: Option<Duration>,
) -> Result<EventStream, ApiError> {
    let id: Arc<str> = request_id.into();
    let (tx, stream) = EventStream::new(request_id, config).map_err(ApiError::internal)?;
    stream.make_resumable(key.as_str().into(), after, retry);
    stream.drive(tx, move |tx| async move {
        loop {
            match reader.next().await {
                Ok(Entry::Frame { id, body }) => {
                    tx.send_frame(FrameId::Given(id), body.to_vec()).await?;
                }
                Ok(Entry::Done) => {
                    // Ending twice is harmless: `drive`'s own `complete` is ignored.
                    let _ = tx.complete_numbered();
                    return Ok(());
                }
                Err(e) => {
                    let frame = error_frame(&id, &e.to_string(), e.code());
                    tx.send_frame(FrameId::Unnumbered, frame).await?;
                    return Ok(());
                }
            }
        }
    });
    Ok(stream)
}

/// A connection's stream that only says why it cannot resume (`expired`), then `[DONE]`.
pub(crate) fn refused(
    request_id: &str,
    config: StreamConfig,
    error: &ReplayError,
) -> Result<EventStream, ApiError> {
    let frame = error_frame(request_id, &error.to_string(), error.code());
    let (tx, stream) = EventStream::new(request_id, config).map_err(ApiError::internal)?;
    tx.try_send_frame(FrameId::Unnumbered, frame)
        .map_err(ApiError::internal)?;
    tx.complete().map_err(ApiError::internal)?;
    Ok(stream)
}
