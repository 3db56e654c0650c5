//! The bytes of every SSE frame this crate writes: a message's `data:` frame, the `id:`
//! line before it, `[DONE]`, heartbeats and `error` frames. Nothing else builds them, and
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

/// Length of the `id: N\n` line written before a frame with an id.
pub fn id_line_len(id: Option<u64>) -> usize {
    id.map_or(0, |id| 5 + id.checked_ilog10().unwrap_or(0) as usize + 1)
}

/// Appends the `id: N\n` line of a frame with an id.
pub fn write_id_line(out: &mut BytesMut, id: u64) {
    let mut text = itoa::Buffer::new();
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(text.format(id).as_bytes());
    out.extend_from_slice(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lines_are_measured_as_written() {
        for id in [0, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut line = BytesMut::new();
            write_id_line(&mut line, id);
            assert_eq!(&line[..], format!("id: {id}\n").as_bytes());
            assert_eq!(id_line_len(Some(id)), line.len(), "{id}");
        }
        assert_eq!(id_line_len(None), 0);
    }

    #[test]
    fn error_frames_are_one_data_line() {
        let frame = String::from_utf8(error_frame("r1", "gone\nnow", "expired")).unwrap();
        assert!(frame.starts_with("data: {\"type\": \"error\""), "{frame}");
        assert!(frame.contains(r#""code": "expired""#) && frame.contains(r#""isFinal": true"#));
        assert!(frame.ends_with("}\n\n") && frame.matches('\n').count() == 2);
    }
}
