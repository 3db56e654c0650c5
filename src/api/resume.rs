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

use super::wire::{Format, Relay};
use super::ApiError;
use crate::replay::{error_frame, Entry, LogReader, LogWriter, ReplayError, StreamKey};
use crate::stream::{EventStream, FrameId, QueuedFrame, Sender, StreamConfig};

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
/// Without `linger` the search runs to its end whether or not a client reads it.
pub(crate) async fn record<G: Send>(
    mut search: EventStream,
    writer: Box<dyn LogWriter>,
    request_id: Arc<str>,
    guard: G,
    linger: bool,
) {
    // The last id logged.
    let mut last_id = 0;
    let unattended = writer.unattended();
    let unattended = async move {
        if linger {
            unattended.await;
        } else {
            std::future::pending::<()>().await;
        }
    };
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

/// How a connection's stream of a format with an event-id resume convention (the
/// envelope, genie-tool) is numbered: ids `<key>.<n>`, an opening `retry` and id
/// `<key>.<after>` (see [`EventStream::make_resumable`]), and `[DONE]` with the next id,
/// so a reconnect with it is told the end was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resumable<'a> {
    pub key: &'a StreamKey,
    pub after: u64,
    pub retry: Option<Duration>,
}

/// A connection's stream: `reader`'s frames, then `[DONE]` (when `format` has it). The
/// stream layer's `error` endings go out in `format`'s words ([`Format::relay`]).
///
/// With `resumable` the frames carry their ids as [`Resumable`] says (`[DONE]` has no id
/// when the log cannot be read to its end: `superseded`, `expired`, ...). Without, no
/// frame has an id: the OpenAI, AI SDK and AG-UI clients resume without one, and
/// OpenAI's parser turns every later comment heartbeat after an id into an empty event
/// it fails to decode.
pub(crate) fn replay(
    request_id: &str,
    config: StreamConfig,
    mut reader: Box<dyn LogReader>,
    format: Format,
    resumable: Option<Resumable<'_>>,
) -> Result<EventStream, ApiError> {
    let (tx, stream) = EventStream::new(request_id, config).map_err(ApiError::internal)?;
    let numbered = resumable.is_some();
    if let Some(r) = resumable {
        stream.make_resumable(r.key.as_str().into(), r.after, r.retry);
    }
    let frame_id = move |id| match numbered {
        true => FrameId::Given(id),
        false => FrameId::Unnumbered,
    };
    stream.drive(tx, move |tx| async move {
        loop {
            match reader.next().await {
                Ok(Entry::Frame { id, body }) => match format.relay(&body) {
                    Relay::Pass => {
                        tx.send_frame(frame_id(id), body.to_vec()).await?;
                    }
                    Relay::Frames(frames) => {
                        for frame in frames {
                            tx.send_frame(frame_id(id), tx.encode_data(&frame)).await?;
                        }
                    }
                },
                Ok(Entry::Done) => {
                    if numbered {
                        // Ending twice is harmless: `drive`'s own `complete` is ignored.
                        let _ = tx.complete_numbered();
                    }
                    return Ok(());
                }
                Err(e) => {
                    for frame in connection_error(&tx, &e, format) {
                        tx.send_frame(FrameId::Unnumbered, frame).await?;
                    }
                    return Ok(());
                }
            }
        }
    });
    Ok(stream)
}

/// The frames telling a connection why its log cannot be read on, in `format`.
fn connection_error(tx: &Sender, error: &ReplayError, format: Format) -> Vec<Vec<u8>> {
    let envelope = error_frame(tx.request_id(), &error.to_string(), error.code());
    match format.relay(&envelope) {
        Relay::Pass => vec![envelope],
        Relay::Frames(frames) => frames.iter().map(|f| tx.encode_data(f)).collect(),
    }
}

/// A connection's stream that only says why it cannot resume (`expired`), then `[DONE]`.
pub(crate) fn refused(
    request_id: &str,
    config: StreamConfig,
    error: &ReplayError,
    format: Format,
) -> Result<EventStream, ApiError> {
    let (tx, stream) = EventStream::new(request_id, config).map_err(ApiError::internal)?;
    for frame in connection_error(&tx, error, format) {
        tx.try_send_frame(FrameId::Unnumbered, frame)
            .map_err(ApiError::internal)?;
    }
    tx.complete().map_err(ApiError::internal)?;
    Ok(stream)
}
