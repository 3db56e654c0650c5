//! Client-side half of the codec: an incremental `text/event-stream` parser
//! following WHATWG HTML § 9.2.5–9.2.6 ("Parsing/Interpreting an event stream").

use std::borrow::Cow;

use memchr::{memchr, memchr2};

/// The UTF-8 encoding of U+FEFF, ignored once at the start of a stream.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// One dispatched event, as an `EventSource` would hand it to a listener.
///
/// ```
/// use deepsearch_stream::sse::{decode_all, DecodedEvent};
///
/// let events = decode_all(b"id: 1\ndata: hi\n\n");
/// assert_eq!(
///     events,
///     [DecodedEvent { event: "message".into(), data: "hi".into(), last_event_id: "1".into() }]
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEvent {
    /// Event type; `"message"` when the event had no (or an empty) `event` field.
    pub event: String,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The stream's last event id at dispatch time. It persists across events
    /// until an `id` field changes it, so it is not necessarily this event's own.
    pub last_event_id: String,
}

/// Incremental SSE decoder: feed it byte chunks split anywhere, get events.
///
/// It keeps the stream's last event id and reconnection time across events,
/// and across [`Decoder::finish`], so one `Decoder` can follow a client
/// through reconnections (send [`Decoder::last_event_id`] as `Last-Event-ID`).
///
/// ```
/// use deepsearch_stream::sse::Decoder;
///
/// let mut decoder = Decoder::new();
/// let mut events = Vec::new();
/// decoder.feed(b"retry: 3000\nid: 42\ndata: hel", &mut events);
/// assert!(events.is_empty());
/// decoder.feed(b"lo\r", &mut events);
/// decoder.feed(b"\n\r\n", &mut events);
/// assert_eq!(events[0].data, "hello");
/// assert_eq!(decoder.last_event_id(), "42");
/// assert_eq!(decoder.retry(), Some(3000));
/// decoder.finish();
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of a line whose ending has not arrived yet. Holds no CR or LF,
    /// so it is never scanned again, and may end mid UTF-8 sequence.
    line: Vec<u8>,
    /// The last chunk ended in CR: a LF opening the next chunk belongs to it.
    pending_cr: bool,
    /// Past the point where a BOM could still appear.
    bom_done: bool,
    /// How many BOM bytes have been seen while a BOM could still appear.
    bom_matched: u8,
    fields: FieldState,
}

/// The per-stream buffers of the spec, plus what outlives a connection.
#[derive(Debug, Default)]
struct FieldState {
    data: String,
    event_type: String,
    /// The "last event ID buffer": what `id` fields set, before dispatch.
    id_buffer: String,
    /// The "last event ID string": the buffer's value as of the last dispatch.
    last_event_id: String,
    retry: Option<u64>,
}

impl Decoder {
    /// A decoder at the start of a stream, with empty last event id and no
    /// reconnection time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds an arbitrary chunk; complete events are appended to `out` in order.
    ///
    /// Each line is handled as soon as its ending arrives: a CR at the end of
    /// a chunk ends a line right away, and a LF opening the next chunk is then
    /// taken as the rest of that CRLF.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<DecodedEvent>) {
        let Some(chunk) = self.skip_bom(chunk, out) else {
            return;
        };
        let mut rest = chunk;
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        self.feed_lines(rest, out);
    }

    /// Strips a BOM at the start of the stream, even split across chunks.
    /// Returns what is left of `chunk` to parse, or `None` when the whole chunk
    /// may still be the beginning of a BOM.
    fn skip_bom<'c>(&mut self, chunk: &'c [u8], out: &mut Vec<DecodedEvent>) -> Option<&'c [u8]> {
        if self.bom_done {
            return Some(chunk);
        }
        let mut matched = usize::from(self.bom_matched);
        let mut taken = 0;
        while matched < BOM.len() && taken < chunk.len() && chunk[taken] == BOM[matched] {
            matched += 1;
            taken += 1;
        }
        if matched < BOM.len() && taken == chunk.len() {
            self.bom_matched = matched as u8;
            return None;
        }
        self.bom_done = true;
        self.bom_matched = 0;
        if matched < BOM.len() {
            // Not a BOM after all: the bytes held back are ordinary content.
            // They hold no CR or LF, so this only starts the first line.
            self.feed_lines(&BOM[..matched], out);
        }
        Some(&chunk[taken..])
    }

    fn feed_lines(&mut self, mut rest: &[u8], out: &mut Vec<DecodedEvent>) {
        while let Some(end) = memchr2(b'\r', b'\n', rest) {
            if self.line.is_empty() {
                self.fields.process_line(&rest[..end], out);
            } else {
                self.line.extend_from_slice(&rest[..end]);
                self.fields.process_line(&self.line, out);
                self.line.clear();
            }
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            rest = &rest[next..];
        }
        self.line.extend_from_slice(rest);
    }

    /// End of stream: an incomplete event is discarded (per spec). Resets line state.
    ///
    /// An unterminated last line is dropped too, as is an `id` that was read
    /// but never dispatched. The last event id and reconnection time are kept;
    /// the decoder is ready for a new stream (which may again start with a BOM).
    ///
    /// ```
    /// use deepsearch_stream::sse::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// let mut events = Vec::new();
    /// decoder.feed(b"id: 1\n\nid: 2\ndata: lost\n", &mut events);
    /// decoder.finish();
    /// decoder.feed(b"data: next\n\n", &mut events);
    /// assert_eq!(events.len(), 1);
    /// assert_eq!((events[0].data.as_str(), events[0].last_event_id.as_str()), ("next", "1"));
    /// ```
    pub fn finish(&mut self) {
        self.line.clear();
        self.pending_cr = false;
        self.bom_done = false;
        self.bom_matched = 0;
        let fields = &mut self.fields;
        fields.data.clear();
        fields.event_type.clear();
        // A reconnected stream starts from the id the client last saw
        // dispatched, as browsers do, not from an undispatched one.
        fields.id_buffer.clone_from(&fields.last_event_id);
    }

    /// The last event id as of the last dispatch (what a client sends as
    /// `Last-Event-ID` when it reconnects); empty until one is set.
    pub fn last_event_id(&self) -> &str {
        &self.fields.last_event_id
    }

    /// Reconnection time in ms: the last valid `retry:` seen. Values too large
    /// for `u64` saturate.
    pub fn retry(&self) -> Option<u64> {
        self.fields.retry
    }
}

impl FieldState {
    fn process_line(&mut self, line: &[u8], out: &mut Vec<DecodedEvent>) {
        // Field names and the separators are ASCII, and a lossy UTF-8 decode
        // never merges an ASCII byte into a replacement character, so matching
        // on raw bytes and decoding only values is the same as decoding first.
        let (name, value) = match memchr(b':', line) {
            None if line.is_empty() => return self.dispatch(out),
            None => (line, &b""[..]),
            Some(0) => return, // comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
        };
        match name {
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&lossy(value));
            }
            b"data" => {
                self.data.push_str(&lossy(value));
                self.data.push('\n');
            }
            // A NUL-carrying id is ignored so that it cannot be echoed back
            // in a `Last-Event-ID` header.
            b"id" if memchr(0, value).is_none() => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&lossy(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry = Some(value.iter().fold(0u64, |ms, digit| {
                    ms.saturating_mul(10)
                        .saturating_add(u64::from(digit - b'0'))
                }));
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<DecodedEvent>) {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event = if self.event_type.is_empty() {
            String::from("message")
        } else {
            std::mem::take(&mut self.event_type)
        };
        out.push(DecodedEvent {
            event,
            data: std::mem::take(&mut self.data),
            last_event_id: self.last_event_id.clone(),
        });
    }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Decodes a complete stream held in memory: new + feed + finish.
///
/// ```
/// use deepsearch_stream::sse::decode_all;
///
/// let events = decode_all(b"event: add\ndata: 1\n\ndata: no blank line");
/// assert_eq!(events.len(), 1);
/// assert_eq!((events[0].event.as_str(), events[0].data.as_str()), ("add", "1"));
/// ```
pub fn decode_all(bytes: &[u8]) -> Vec<DecodedEvent> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.feed(bytes, &mut out);
    decoder.finish();
    out
}

#[cfg(test)]
mod tests;
