//! Resumable streams: a search writes every frame into its replay log, and the client's
//! connection reads that log, so a client that comes back with `Last-Event-ID` (and the
//! same `request_id`) gets what it missed, then the live rest.
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

use bytes::Bytes;
use futures::StreamExt;

use super::service::StreamPermit;
use super::ApiError;
use crate::replay::{error_frame, Entry, LogReader, LogWriter, ReplayError};
use crate::stream::{EventStream, FrameId, StreamConfig, DONE_FRAME};

/// Largest `Last-Event-ID` accepted (ids are 1, 2, ... per stream).
pub const MAX_LAST_EVENT_ID: u64 = i64::MAX as u64;

/// `message` of the `error` a search gets when no client came back within the linger.
pub const ABANDONED_MESSAGE: &str = "no client came back for this search; it was stopped";
/// `code` of that `error`.
pub const ABANDONED_CODE: &str = "abandoned";

/// The resume point: the `Last-Event-ID` header (`header_name` names it in errors), else
/// the `last_event_id` query parameter of `query`. `None`: not a resume.
pub fn last_event_id(header: Option<&str>, query: Option<&str>) -> Result<Option<u64>, ApiError> {
    let (field, raw) = match (header, query.and_then(query_last_event_id)) {
        (Some(h), _) => ("Last-Event-ID", h.to_string()),
        (None, Some(q)) => ("last_event_id", q),
        (None, None) => return Ok(None),
    };
    let valid = !raw.is_empty() && raw.len() <= 19 && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<u64>() {
        Ok(id) if valid && id <= MAX_LAST_EVENT_ID => Ok(Some(id)),
        _ => Err(ApiError::new(
            400,
            "invalid_last_event_id",
            Some(field),
            format!(
                "must be a whole number from 0 to {MAX_LAST_EVENT_ID} (an id this server \
                 sent), got {:?}",
                raw.chars().take(40).collect::<String>()
            ),
        )),
    }
}

fn query_last_event_id(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "last_event_id" || k == "lastEventId")
        .map(|(_, v)| v.into_owned())
}

/// A `GET` query string as the JSON body the POST route takes, so one parser checks both:
/// numbers and booleans are read as such, `stream_mode` may be a name or a JSON object,
/// `search_engines` is comma-separated. The first of repeated parameters counts;
/// `last_event_id` is left to [`last_event_id`].
pub fn query_to_body(query: &str) -> Vec<u8> {
    let mut obj = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if obj.contains_key(key.as_ref()) || key == "last_event_id" || key == "lastEventId" {
            continue;
        }
        let value = match key.as_ref() {
            "max_loop" | "maxLoop" => serde_json::from_str::<serde_json::Number>(&value)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|_| value.as_ref().into()),
            "stream" => match value.as_ref() {
                "true" => true.into(),
                "false" => false.into(),
                other => other.into(),
            },
            "stream_mode" | "streamMode" if value.trim_start().starts_with('{') => {
                serde_json::from_str(&value).unwrap_or_else(|_| value.as_ref().into())
            }
            "search_engines" | "searchEngines" => value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(serde_json::Value::from)
                .collect(),
            _ => value.as_ref().into(),
        };
        obj.insert(key.into_owned(), value);
    }
    serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default()
}

/// The settings of a search's own stream, whose only reader is the recorder: one frame
/// per chunk (so each is logged with its id) and no heartbeats (connections make their own).
pub(crate) fn recorded_config(config: &StreamConfig) -> StreamConfig {
    StreamConfig {
        heartbeat: None,
        max_chunk_bytes: 1,
        ..config.clone()
    }
}

/// The settings of a connection reading a log: the search's timeout already ends the log.
pub(crate) fn replay_config(config: &StreamConfig) -> StreamConfig {
    StreamConfig {
        timeout: None,
        ..config.clone()
    }
}

/// Splits a chunk of one frame into its id and the rest (`None` for a frame without id).
fn split_id(chunk: &Bytes) -> (Option<u64>, Bytes) {
    let Some(rest) = chunk.strip_prefix(b"id: ") else {
        return (None, chunk.clone());
    };
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return (None, chunk.clone());
    };
    let id = std::str::from_utf8(&rest[..end])
        .ok()
        .and_then(|s| s.parse().ok());
    match id {
        Some(id) => (Some(id), chunk.slice(4 + end + 1..)),
        None => (None, chunk.clone()),
    }
}

/// Records `search` into `writer` until it ends, is abandoned or is replaced, holding
/// `permit` (the search's slot of the concurrency limit) until then.
pub(crate) async fn record(
    mut search: EventStream,
    writer: Box<dyn LogWriter>,
    request_id: Arc<str>,
    permit: StreamPermit,
) {
    // The last id logged.
    let mut last_id = 0;
    let unattended = writer.unattended();
    tokio::pin!(unattended);
    let abandoned = loop {
        let chunk = tokio::select! {
            chunk = search.next() => chunk,
            () = &mut unattended => break true,
        };
        let Some(chunk) = chunk else {
            // Closed without `[DONE]`: the server is dropping its streams.
            break false;
        };
        if chunk.as_ref() == DONE_FRAME {
            break false;
        }
        let (id, body) = split_id(&chunk);
        let Some(id) = id else {
            // The search's stream numbers every frame but `[DONE]`.
            tracing::warn!(request_id = %request_id, "unnumbered frame not logged");
            continue;
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
    drop(permit);
}

/// A connection's stream: `reader`'s frames with their own ids, then `[DONE]`.
pub(crate) fn replay(
    request_id: &str,
    config: StreamConfig,
    mut reader: Box<dyn LogReader>,
) -> Result<EventStream, ApiError> {
    let id: Arc<str> = request_id.into();
    EventStream::spawn(request_id, config, move |tx| async move {
        loop {
            match reader.next().await {
                Ok(Entry::Frame { id, body }) => {
                    tx.send_frame(FrameId::Given(id), body.to_vec()).await?;
                }
                Ok(Entry::Done) => return Ok(()),
                Err(e) => {
                    let frame = error_frame(&id, &e.to_string(), e.code());
                    tx.send_frame(FrameId::Unnumbered, frame).await?;
                    return Ok(());
                }
            }
        }
    })
    .map_err(|e: crate::stream::StreamError| ApiError::new(500, "internal", None, e.to_string()))
}

/// A connection's stream that only says why it cannot resume (`expired`), then `[DONE]`.
pub(crate) fn refused(
    request_id: &str,
    config: StreamConfig,
    error: &ReplayError,
) -> Result<EventStream, ApiError> {
    let frame = error_frame(request_id, &error.to_string(), error.code());
    let internal =
        |e: crate::stream::StreamError| ApiError::new(500, "internal", None, e.to_string());
    let (tx, stream) = EventStream::new(request_id, config).map_err(internal)?;
    match tx.try_send_frame(FrameId::Unnumbered, frame) {
        Ok(_) => {}
        Err(e) => return Err(internal(e)),
    }
    tx.complete().map_err(internal)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_from_header_or_query() {
        assert_eq!(last_event_id(None, None), Ok(None));
        assert_eq!(
            last_event_id(Some("7"), Some("last_event_id=3")),
            Ok(Some(7))
        );
        assert_eq!(
            last_event_id(None, Some("query=q&last_event_id=3")),
            Ok(Some(3))
        );
        assert_eq!(last_event_id(Some("0"), None), Ok(Some(0)));
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "abc",
            " 1",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            let e = last_event_id(Some(bad), None).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (400, "invalid_last_event_id"),
                "{bad:?}"
            );
            assert_eq!(e.field.as_deref(), Some("Last-Event-ID"));
        }
        let e = last_event_id(None, Some("last_event_id=x")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("last_event_id"));
    }

    #[test]
    fn query_strings_become_the_post_body() {
        let body = query_to_body(
            "query=What+is%20Tokio%3F&request_id=r1&max_loop=2&stream=false\
             &stream_mode=%7B%22mode%22%3A%22token%22%2C%22token%22%3A4%7D\
             &search_engines=local,+searxng&last_event_id=3&query=second",
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"query": "What is Tokio?", "request_id": "r1", "max_loop": 2,
                "stream": false, "stream_mode": {"mode": "token", "token": 4},
                "search_engines": ["local", "searxng"]})
        );
        let value: serde_json::Value =
            serde_json::from_slice(&query_to_body("max_loop=three&stream=yes")).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"max_loop": "three", "stream": "yes"})
        );
    }

    #[test]
    fn frames_split_into_id_and_body() {
        let (id, body) = split_id(&Bytes::from_static(b"id: 42\ndata: x\n\n"));
        assert_eq!((id, &body[..]), (Some(42), &b"data: x\n\n"[..]));
        let (id, body) = split_id(&Bytes::from_static(DONE_FRAME));
        assert_eq!((id, &body[..]), (None, DONE_FRAME));
    }
}
