//! The bytes of every SSE frame this crate writes: a message's `data:` frame, its `id:`
//! line (the frame's last line), `[DONE]`, heartbeats, `error` frames and the opening
//! `retry:` frame of a resumable stream. Nothing else builds them, and
//! nothing reads them back: frames travel typed (id and body apart) until they go out.

use bytes::BytesMut;
use serde::Serialize;

use crate::message::{Envelope, ErrorData};

/// The frame a successful stream ends with.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";
/// The heartbeat the seed's clients and proxies look for.
pub const HEARTBEAT_DATA_FRAME: &[u8] = b"data: heartbeat\n\n";
/// The heartbeat as an SSE comment, invisible to `EventSource` listeners.
pub const HEARTBEAT_COMMENT_FRAME: &[u8] = b": heartbeat\n\n";

/// A message's frame, `data: <envelope JSON>\n\n`, without its `id:` line; `capacity` is
/// a guess of its size.
pub fn data_frame<D: Serialize + ?Sized>(
    env: &Envelope<'_, D>,
    capacity: usize,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = Vec::with_capacity(capacity);
    body.extend_from_slice(b"data: ");
    env.write_json(&mut body)?;
    // JSON text never holds a raw CR or LF (serde_json escapes them), so one `data:`
    // line is exactly what the general SSE encoder would write.
    body.extend_from_slice(b"\n\n");
    Ok(body)
}

/// An `error` frame body `{"message", "code"}` (`isFinal: true`) as a stream ends with,
/// without its `id:` line.
pub fn error_frame(request_id: &str, message: &str, code: &str) -> Vec<u8> {
    let data = ErrorData { message, code };
    let env = Envelope::new("error", &data, request_id).is_final(Some(true));
    // ErrorData holds only strings: encoding cannot fail.
    data_frame(&env, 160).unwrap_or_default()
}

/// Length of the `id:` line of a frame numbered `id`, its ids prefixed with `key`.
pub fn id_line_len(key: Option<&str>, id: Option<u64>) -> usize {
    id.map_or(0, |id| {
        let digits = id.checked_ilog10().unwrap_or(0) as usize + 1;
        5 + key.map_or(0, |k| k.len() + 1) + digits
    })
}

/// Appends the `id: N\n` line (`id: <key>.N\n` with a key).
pub fn write_id_line(out: &mut BytesMut, key: Option<&str>, id: u64) {
    let mut text = itoa::Buffer::new();
    out.extend_from_slice(b"id: ");
    if let Some(key) = key {
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b".");
    }
    out.extend_from_slice(text.format(id).as_bytes());
    out.extend_from_slice(b"\n");
}

/// Appends a frame: `body` (`data: ...\n\n`) with its `id:` line, if any, as its LAST
/// line. A client that records an id as soon as it reads the line (fetch-event-source
/// does) then never holds the id of a frame whose data it did not get whole: a
/// connection cut inside a frame leaves the previous id, and the resume repeats it.
pub fn write_frame(out: &mut BytesMut, key: Option<&str>, id: Option<u64>, body: &[u8]) {
    match (id, body.strip_suffix(b"\n")) {
        (Some(id), Some(lines)) => {
            out.extend_from_slice(lines);
            write_id_line(out, key, id);
            out.extend_from_slice(b"\n");
        }
        _ => out.extend_from_slice(body),
    }
}

/// The frame a resumable stream opens with: `retry:` (how long a client waits before
/// reconnecting, when given) and a heartbeat (`heartbeat`, a heartbeat frame) carrying
/// the id the client resumes from (`<key>.<after>`), so a client holds the stream's key
/// before the first event, and a cut before that event resumes too. A heartbeat, not a
/// frame of its own: clients already skip heartbeats, while a frame without data is an
/// empty message to some (fetch-event-source dispatches one).
pub fn opening_frame(
    key: &str,
    after: u64,
    retry: Option<std::time::Duration>,
    heartbeat: &[u8],
) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(64 + key.len() + heartbeat.len());
    if let Some(retry) = retry {
        let mut text = itoa::Buffer::new();
        let ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX);
        out.extend_from_slice(b"retry: ");
        out.extend_from_slice(text.format(ms).as_bytes());
        out.extend_from_slice(b"\n");
    }
    write_frame(&mut out, Some(key), Some(after), heartbeat);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lines_are_measured_as_written() {
        for id in [0, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut line = BytesMut::new();
            write_id_line(&mut line, None, id);
            assert_eq!(&line[..], format!("id: {id}\n").as_bytes());
            assert_eq!(id_line_len(None, Some(id)), line.len(), "{id}");
            let mut line = BytesMut::new();
            write_id_line(&mut line, Some("k3y"), id);
            assert_eq!(&line[..], format!("id: k3y.{id}\n").as_bytes());
            assert_eq!(id_line_len(Some("k3y"), Some(id)), line.len(), "{id}");
        }
        assert_eq!(id_line_len(Some("k"), None), 0);
    }

    #[test]
    fn the_id_line_is_the_last_line_of_a_frame() {
        let mut out = BytesMut::new();
        write_frame(&mut out, Some("k"), Some(7), b"data: {}\n\n");
        write_frame(&mut out, None, Some(8), DONE_FRAME);
        write_frame(&mut out, None, None, HEARTBEAT_DATA_FRAME);
        assert_eq!(
            &out[..],
            b"data: {}\nid: k.7\n\ndata: [DONE]\nid: 8\n\ndata: heartbeat\n\n"
        );
    }

    #[test]
    fn a_stream_opens_with_retry_and_its_key() {
        let retry = Some(std::time::Duration::from_millis(3000));
        let open = opening_frame("k", 0, retry, HEARTBEAT_DATA_FRAME);
        assert_eq!(open, b"retry: 3000\ndata: heartbeat\nid: k.0\n\n");
        let open = opening_frame("k", 5, None, HEARTBEAT_COMMENT_FRAME);
        assert_eq!(open, b": heartbeat\nid: k.5\n\n");
    }

    #[test]
    fn error_frames_are_one_data_line() {
        let frame = String::from_utf8(error_frame("r1", "gone\nnow", "expired")).unwrap();
        assert!(frame.starts_with("data: {\"type\": \"error\""), "{frame}");
        assert!(frame.contains(r#""code": "expired""#) && frame.contains(r#""isFinal": true"#));
        assert!(frame.ends_with("}\n\n") && frame.matches('\n').count() == 2);
    }
}
