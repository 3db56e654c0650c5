//! Server-side half of the codec: turns [`Event`]s into `text/event-stream` frames.

use std::io::Write as _;

use memchr::memchr2;

/// One server-sent event to write, field by field.
///
/// Every field is optional; `encode` writes exactly the fields that are set,
/// in a fixed order (comment lines, `event`, `id`, `retry`, data lines), and
/// ends the frame with one blank line. An `Event` with no field set therefore
/// encodes as a lone `"\n"`, which a receiver dispatches as nothing.
///
/// ```
/// use deepsearch_stream::sse::Event;
///
/// let frame = Event::data("hello\nworld")
///     .with_event("delta")
///     .with_id("7")
///     .to_bytes()
///     .unwrap();
/// assert_eq!(frame, b"event: delta\nid: 7\ndata: hello\ndata: world\n\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Event type (`event:` field). Must not contain CR or LF.
    pub event: Option<String>,
    /// Event id (`id:` field). Must not contain CR, LF or NUL; `Some("")`
    /// tells the receiver to reset its last event id.
    pub id: Option<String>,
    /// Reconnection time in milliseconds (`retry:` field).
    pub retry: Option<u64>,
    /// Payload; may span lines (CRLF, CR or LF). `Some("")` is an event with
    /// empty data, `None` an event that carries no data and so is not
    /// dispatched by the receiver (its `id`/`retry` still take effect).
    pub data: Option<String>,
    /// Comment text, written as `:` lines that receivers ignore; useful as a
    /// keep-alive. May span lines.
    pub comment: Option<String>,
}

/// Why an [`Event`] cannot be encoded. Each case would otherwise let a field
/// value break out of its line and inject fields or events.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The `event` field contains CR or LF.
    #[error("SSE event type contains a line break (CR or LF)")]
    NewlineInEvent,
    /// The `id` field contains CR or LF.
    #[error("SSE event id contains a line break (CR or LF)")]
    NewlineInId,
    /// The `id` field contains NUL, which receivers silently ignore.
    #[error("SSE event id contains NUL")]
    NulInId,
}

impl Event {
    /// An event with no field set.
    ///
    /// ```
    /// use deepsearch_stream::sse::Event;
    /// assert_eq!(Event::new().to_bytes().unwrap(), b"\n");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// An event carrying `data` and nothing else.
    ///
    /// ```
    /// use deepsearch_stream::sse::Event;
    /// assert_eq!(Event::data("hi").to_bytes().unwrap(), b"data: hi\n\n");
    /// ```
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// Sets the event type.
    pub fn with_event(mut self, e: impl Into<String>) -> Self {
        self.event = Some(e.into());
        self
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the reconnection time in milliseconds.
    pub fn with_retry(mut self, ms: u64) -> Self {
        self.retry = Some(ms);
        self
    }

    /// Sets the comment text.
    pub fn with_comment(mut self, c: impl Into<String>) -> Self {
        self.comment = Some(c.into());
        self
    }

    /// Sets the data.
    pub fn with_data(mut self, d: impl Into<String>) -> Self {
        self.data = Some(d.into());
        self
    }

    /// Checks that every field can be written without breaking the framing.
    fn validate(&self) -> Result<(), EncodeError> {
        if let Some(event) = &self.event {
            if memchr2(b'\r', b'\n', event.as_bytes()).is_some() {
                return Err(EncodeError::NewlineInEvent);
            }
        }
        if let Some(id) = &self.id {
            if memchr2(b'\r', b'\n', id.as_bytes()).is_some() {
                return Err(EncodeError::NewlineInId);
            }
            if memchr::memchr(0, id.as_bytes()).is_some() {
                return Err(EncodeError::NulInId);
            }
        }
        Ok(())
    }

    /// Appends the frame to `buf`. Validates first: on error nothing is written.
    ///
    /// Lines end in LF. Multi-line `data` and `comment` become one line each
    /// per input line (CRLF, CR and LF all count as one line ending).
    ///
    /// ```
    /// use deepsearch_stream::sse::{EncodeError, Event};
    ///
    /// let mut buf = Vec::new();
    /// Event::new().with_comment("keep-alive").encode(&mut buf).unwrap();
    /// assert_eq!(buf, b": keep-alive\n\n");
    ///
    /// let bad = Event::data("x").with_id("a\nb");
    /// assert_eq!(bad.encode(&mut buf), Err(EncodeError::NewlineInId));
    /// assert_eq!(buf, b": keep-alive\n\n"); // untouched
    /// ```
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.validate()?;
        buf.reserve(self.size_hint());
        if let Some(comment) = &self.comment {
            encode_comment_lines(comment, buf);
        }
        if let Some(event) = &self.event {
            push_field(buf, b"event", event.as_bytes());
        }
        if let Some(id) = &self.id {
            push_field(buf, b"id", id.as_bytes());
        }
        if let Some(retry) = self.retry {
            // Writing into a Vec cannot fail.
            let _ = writeln!(buf, "retry: {retry}");
        }
        if let Some(data) = &self.data {
            encode_data_lines(data, buf);
        }
        buf.push(b'\n');
        Ok(())
    }

    /// The frame as a fresh buffer; see [`Event::encode`].
    ///
    /// ```
    /// use deepsearch_stream::sse::Event;
    /// assert_eq!(Event::data("").to_bytes().unwrap(), b"data:\n\n");
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        self.encode(&mut buf)?;
        Ok(buf)
    }

    /// Enough to hold a frame for typical single-line fields in one allocation;
    /// multi-line values may still grow the buffer a little.
    fn size_hint(&self) -> usize {
        // "event: " / "id: " / "retry: " / "data: " plus LF, and the blank line.
        let field =
            |v: &Option<String>, name_len: usize| v.as_ref().map_or(0, |s| s.len() + name_len + 3);
        field(&self.comment, 0)
            + field(&self.event, 5)
            + field(&self.id, 2)
            + self.retry.map_or(0, |_| 28)
            + field(&self.data, 4)
            + 1
    }
}

/// Writes `name: value\n`, or `name:\n` when the value is empty; the space is
/// always added otherwise so that a value starting with a space survives the
/// receiver stripping one.
fn push_field(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.extend_from_slice(name);
    push_value(buf, value);
}

fn push_value(buf: &mut Vec<u8>, value: &[u8]) {
    if value.is_empty() {
        buf.extend_from_slice(b":\n");
    } else {
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value);
        buf.push(b'\n');
    }
}

/// Calls `f` with each line of `text`, where CRLF, CR and LF each end a line.
/// Like the receiver's line splitting, a trailing line ending yields a final
/// empty line, so `"a\n"` is `["a", ""]` and `""` is `[""]`.
fn for_each_line(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = text;
    while let Some(i) = memchr2(b'\r', b'\n', rest) {
        f(&rest[..i]);
        let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[i + skip..];
    }
    f(rest);
}

/// Writes `data:` lines for `data` (split on CRLF, CR or LF; CRLF is ONE line
/// ending), no blank line after.
///
/// Each line becomes `data: <line>`, or just `data:` when the line is empty,
/// so an empty string gives one `data:` line. The receiver joins the lines
/// with LF, so line endings come back normalized to `\n`.
///
/// ```
/// use deepsearch_stream::sse::encode_data_lines;
///
/// let mut buf = Vec::new();
/// encode_data_lines("a\r\nb\rc\n", &mut buf);
/// assert_eq!(buf, b"data: a\ndata: b\ndata: c\ndata:\n");
/// ```
pub fn encode_data_lines(data: &str, buf: &mut Vec<u8>) {
    buf.reserve(data.len() + 7);
    for_each_line(data.as_bytes(), |line| push_field(buf, b"data", line));
}

/// Writes comment lines (`: text`), one per line of `text`, split like data.
///
/// An empty line becomes a bare `:`.
///
/// ```
/// use deepsearch_stream::sse::encode_comment_lines;
///
/// let mut buf = Vec::new();
/// encode_comment_lines("ping\n", &mut buf);
/// assert_eq!(buf, b": ping\n:\n");
/// ```
pub fn encode_comment_lines(text: &str, buf: &mut Vec<u8>) {
    buf.reserve(text.len() + 3);
    for_each_line(text.as_bytes(), |line| push_value(buf, line));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(e: &Event) -> String {
        String::from_utf8(e.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn field_order_is_fixed() {
        let e = Event::data("d")
            .with_retry(1500)
            .with_id("i")
            .with_event("e")
            .with_comment("c");
        assert_eq!(frame(&e), ": c\nevent: e\nid: i\nretry: 1500\ndata: d\n\n");
    }

    #[test]
    fn empty_event_is_a_lone_blank_line() {
        assert_eq!(frame(&Event::new()), "\n");
    }

    #[test]
    fn empty_values_have_no_trailing_space() {
        let e = Event::data("").with_event("").with_id("").with_comment("");
        assert_eq!(frame(&e), ":\nevent:\nid:\ndata:\n\n");
    }

    #[test]
    fn leading_space_in_values_is_kept_behind_the_separator() {
        let e = Event::data(" x").with_event(" e").with_id(" i");
        assert_eq!(frame(&e), "event:  e\nid:  i\ndata:  x\n\n");
    }

    #[test]
    fn data_splits_on_every_line_ending_kind() {
        let mut buf = Vec::new();
        encode_data_lines("1\r\n2\r3\n4\n\r5\r\r\n6", &mut buf);
        assert_eq!(
            buf,
            b"data: 1\ndata: 2\ndata: 3\ndata: 4\ndata:\ndata: 5\ndata:\ndata: 6\n"
        );
    }

    #[test]
    fn data_with_only_line_endings() {
        let mut buf = Vec::new();
        encode_data_lines("\r\n", &mut buf);
        assert_eq!(buf, b"data:\ndata:\n");
        buf.clear();
        encode_data_lines("\n\r", &mut buf);
        assert_eq!(buf, b"data:\ndata:\ndata:\n");
    }

    #[test]
    fn comment_lines_split_like_data() {
        let mut buf = Vec::new();
        encode_comment_lines("a\r\n\rb", &mut buf);
        assert_eq!(buf, b": a\n:\n: b\n");
    }

    #[test]
    fn encode_appends_to_existing_bytes() {
        let mut buf = b"prefix".to_vec();
        Event::data("x").encode(&mut buf).unwrap();
        assert_eq!(buf, b"prefixdata: x\n\n");
    }

    #[test]
    fn invalid_fields_are_rejected_without_writing() {
        let cases = [
            (
                Event::data("x").with_event("a\nb"),
                EncodeError::NewlineInEvent,
            ),
            (
                Event::data("x").with_event("a\rb"),
                EncodeError::NewlineInEvent,
            ),
            (Event::data("x").with_id("a\r\nb"), EncodeError::NewlineInId),
            (Event::data("x").with_id("\r"), EncodeError::NewlineInId),
            (Event::data("x").with_id("a\0b"), EncodeError::NulInId),
        ];
        for (event, err) in cases {
            let mut buf = b"keep".to_vec();
            assert_eq!(event.encode(&mut buf), Err(err));
            assert_eq!(buf, b"keep", "{event:?}");
            assert_eq!(event.to_bytes(), Err(err));
        }
    }

    #[test]
    fn event_may_contain_nul() {
        assert_eq!(
            frame(&Event::data("x").with_event("a\0")),
            "event: a\0\ndata: x\n\n"
        );
    }

    #[test]
    fn retry_extremes() {
        assert_eq!(frame(&Event::new().with_retry(0)), "retry: 0\n\n");
        assert_eq!(
            frame(&Event::new().with_retry(u64::MAX)),
            "retry: 18446744073709551615\n\n"
        );
    }
}
