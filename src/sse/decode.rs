//! Client-side half of the codec: an incremental `text/event-stream` parser
//! following WHATWG HTML § 9.2.5–9.2.6 ("Parsing/Interpreting an event stream").

use std::borrow::Cow;
use std::sync::Arc;

use memchr::{memchr, memchr2};
use thiserror::Error;

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
    ///
    /// Shared, not copied: every event dispatched under the same id holds the
    /// same allocation, so a long id (up to the line limit) followed by many
    /// small events costs its length once, not once per event.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use deepsearch_stream::sse::decode_all;
    ///
    /// let events = decode_all(b"id: 7\ndata: a\n\ndata: b\n\n");
    /// assert_eq!(&*events[1].last_event_id, "7");
    /// assert!(Arc::ptr_eq(&events[0].last_event_id, &events[1].last_event_id));
    /// ```
    pub last_event_id: Arc<str>,
}

/// Why a [`Decoder`] stopped: the stream broke one of its limits.
///
/// Both limits count bytes as they arrive on the wire, before lossy UTF-8
/// decoding, so whether a stream is accepted never depends on how it was
/// chunked or on how much its invalid bytes expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A line (not counting its line ending) was longer than `limit` bytes.
    /// Raised as soon as the excess arrives, without waiting for a line
    /// ending that may never come.
    #[error("SSE line longer than the limit of {limit} bytes")]
    LineTooLong {
        /// The decoder's `max_line_bytes`.
        limit: usize,
    },
    /// The `data` of one event grew past `limit` bytes. Raised by the data
    /// line that crosses the limit, before the event is complete.
    #[error("SSE event data larger than the limit of {limit} bytes")]
    EventTooLarge {
        /// The decoder's `max_event_bytes`.
        limit: usize,
    },
}

/// Incremental SSE decoder: feed it byte chunks split anywhere, get events.
///
/// # Limits
///
/// An upstream can send a line that never ends, or an event with endless
/// `data:` lines; the decoder refuses to buffer either without bound:
///
/// - `max_line_bytes` bounds one line, without its line ending (and without
///   a leading BOM).
/// - `max_event_bytes` bounds the `data` of one event: the values of its
///   `data` lines plus the LF joining each pair, which is exactly the
///   dispatched `data.len()` for valid UTF-8. Each invalid byte becomes
///   U+FFFD (3 bytes), so the buffer holds at most three times the limit.
///
/// The `event` and `id` values are single lines, so the line limit bounds
/// them. A value exactly at a limit is accepted. [`Decoder::new`] uses
/// [`Decoder::DEFAULT_MAX_LINE_BYTES`] and [`Decoder::DEFAULT_MAX_EVENT_BYTES`];
/// [`Decoder::with_limits`] sets others.
///
/// Breaking a limit is an error ([`Decoder::try_feed`]), never a truncation:
/// events completed before the offending byte are still delivered, then the
/// decoder is poisoned and takes no more input, even after
/// [`Decoder::finish`], because nothing after a dropped line or a half-read
/// event can be trusted to be framed as the server meant. To follow the
/// server again, reconnect with a new decoder (sending
/// [`Decoder::last_event_id`], which stays readable, as `Last-Event-ID`).
///
/// # Reconnection
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
#[derive(Debug)]
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
    max_line_bytes: usize,
    /// Set by the first broken limit; from then on input is refused.
    error: Option<DecodeError>,
    fields: FieldState,
}

/// The per-stream buffers of the spec, plus what outlives a connection.
#[derive(Debug)]
struct FieldState {
    data: String,
    /// Wire bytes behind `data` (it may be longer, from lossy decoding),
    /// counted the same way: each value plus its LF.
    data_wire_len: usize,
    max_event_bytes: usize,
    event_type: String,
    /// The "last event ID buffer": what `id` fields set, before dispatch.
    id_buffer: String,
    /// An `id` field has set `id_buffer` since the last dispatch, so it may
    /// differ from `last_event_id`. Saves comparing a long id at every event.
    id_changed: bool,
    /// The "last event ID string": the buffer's value as of the last dispatch,
    /// shared with every event dispatched under it.
    last_event_id: Arc<str>,
    retry: Option<u64>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// The line limit of [`Decoder::new`]: 1 MiB, far above the lines
    /// servers write in practice (LLM deltas, JSON chunks), yet small
    /// enough that a stream that never ends its line cannot exhaust memory.
    pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
    /// The event limit of [`Decoder::new`]: 8 MiB of `data` per event, room
    /// for a whole document split over many `data:` lines.
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 8 << 20;

    /// A decoder at the start of a stream, with empty last event id, no
    /// reconnection time and the default limits
    /// ([`Decoder::DEFAULT_MAX_LINE_BYTES`], [`Decoder::DEFAULT_MAX_EVENT_BYTES`]).
    pub fn new() -> Self {
        Self::with_limits(Self::DEFAULT_MAX_LINE_BYTES, Self::DEFAULT_MAX_EVENT_BYTES)
    }

    /// A decoder with its own limits (see [Limits](Decoder#limits)); pass
    /// `usize::MAX` for no limit.
    ///
    /// ```
    /// use deepsearch_stream::sse::{DecodeError, Decoder};
    ///
    /// let mut decoder = Decoder::with_limits(16, 1024);
    /// let mut events = Vec::new();
    /// decoder.try_feed(b"data: short\n\n", &mut events).unwrap();
    /// let err = decoder.try_feed(b"data: this line is too long", &mut events);
    /// assert_eq!(err, Err(DecodeError::LineTooLong { limit: 16 }));
    /// assert_eq!(events.len(), 1);
    /// ```
    pub fn with_limits(max_line_bytes: usize, max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            pending_cr: false,
            bom_done: false,
            bom_matched: 0,
            max_line_bytes,
            error: None,
            fields: FieldState {
                data: String::new(),
                data_wire_len: 0,
                max_event_bytes,
                event_type: String::new(),
                id_buffer: String::new(),
                id_changed: false,
                last_event_id: Arc::from(""),
                retry: None,
            },
        }
    }

    /// Feeds an arbitrary chunk; complete events are appended to `out` in order.
    ///
    /// Each line is handled as soon as its ending arrives: a CR at the end of
    /// a chunk ends a line right away, and a LF opening the next chunk is then
    /// taken as the rest of that CRLF.
    ///
    /// # Errors
    ///
    /// When the chunk breaks a limit, the events completed before the
    /// offending byte are in `out` and the error is returned. The decoder is
    /// then poisoned: every later call returns the same error and touches
    /// nothing, also after [`Decoder::finish`].
    pub fn try_feed(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<DecodedEvent>,
    ) -> Result<(), DecodeError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let result = self.feed_checked(chunk, out);
        if let Err(error) = result {
            self.error = Some(error);
            // Nothing buffered can be used any more; hand the memory back
            // rather than keep up to a limit's worth for the decoder's life.
            self.line = Vec::new();
            self.fields.data = String::new();
            self.fields.data_wire_len = 0;
        }
        result
    }

    /// [`Decoder::try_feed`] for callers that cannot take an error here.
    ///
    /// On a broken limit it does what `try_feed` does, minus the return
    /// value: the events before the offending byte are appended to `out`, the
    /// rest of the stream is ignored, and [`Decoder::error`] says why. It
    /// never panics. Check `error()` before treating the end of the events
    /// as the end of the stream, or use `try_feed` for untrusted input.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<DecodedEvent>) {
        // The error stays readable through `error()`.
        let _ = self.try_feed(chunk, out);
    }

    /// The limit this decoder broke, if any: once set, all input is ignored.
    pub fn error(&self) -> Option<DecodeError> {
        self.error
    }

    fn feed_checked(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<DecodedEvent>,
    ) -> Result<(), DecodeError> {
        let Some(chunk) = self.skip_bom(chunk, out)? else {
            return Ok(());
        };
        let mut rest = chunk;
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        self.feed_lines(rest, out)
    }

    /// Strips a BOM at the start of the stream, even split across chunks.
    /// Returns what is left of `chunk` to parse, or `None` when the whole chunk
    /// may still be the beginning of a BOM.
    fn skip_bom<'c>(
        &mut self,
        chunk: &'c [u8],
        out: &mut Vec<DecodedEvent>,
    ) -> Result<Option<&'c [u8]>, DecodeError> {
        if self.bom_done {
            return Ok(Some(chunk));
        }
        let mut matched = usize::from(self.bom_matched);
        let mut taken = 0;
        while matched < BOM.len() && taken < chunk.len() && chunk[taken] == BOM[matched] {
            matched += 1;
            taken += 1;
        }
        if matched < BOM.len() && taken == chunk.len() {
            self.bom_matched = matched as u8;
            return Ok(None);
        }
        self.bom_done = true;
        self.bom_matched = 0;
        if matched < BOM.len() {
            // Not a BOM after all: the bytes held back are ordinary content.
            // They hold no CR or LF, so this only starts the first line.
            self.feed_lines(&BOM[..matched], out)?;
        }
        Ok(Some(&chunk[taken..]))
    }

    fn feed_lines(
        &mut self,
        mut rest: &[u8],
        out: &mut Vec<DecodedEvent>,
    ) -> Result<(), DecodeError> {
        while let Some(end) = memchr2(b'\r', b'\n', rest) {
            self.check_line_len(end)?;
            if self.line.is_empty() {
                self.fields.process_line(&rest[..end], out)?;
            } else {
                self.line.extend_from_slice(&rest[..end]);
                self.fields.process_line(&self.line, out)?;
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
        // Checking the unterminated tail too is what bounds `line`, and it
        // makes the error independent of where the chunks were cut.
        self.check_line_len(rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// Whether the current line may grow by `more` bytes.
    fn check_line_len(&self, more: usize) -> Result<(), DecodeError> {
        if self.line.len().saturating_add(more) > self.max_line_bytes {
            return Err(DecodeError::LineTooLong {
                limit: self.max_line_bytes,
            });
        }
        Ok(())
    }

    /// End of stream: an incomplete event is discarded (per spec). Resets line state.
    ///
    /// A poisoned decoder stays poisoned (see [Limits](Decoder#limits)).
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
    /// assert_eq!((events[0].data.as_str(), &*events[0].last_event_id), ("next", "1"));
    /// ```
    pub fn finish(&mut self) {
        self.line.clear();
        self.pending_cr = false;
        self.bom_done = false;
        self.bom_matched = 0;
        let fields = &mut self.fields;
        fields.data.clear();
        fields.data_wire_len = 0;
        fields.event_type.clear();
        // A reconnected stream starts from the id the client last saw
        // dispatched, as browsers do, not from an undispatched one.
        fields.id_buffer.clear();
        fields.id_buffer.push_str(&fields.last_event_id);
        fields.id_changed = false;
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
    fn process_line(
        &mut self,
        line: &[u8],
        out: &mut Vec<DecodedEvent>,
    ) -> Result<(), DecodeError> {
        // Field names and the separators are ASCII, and a lossy UTF-8 decode
        // never merges an ASCII byte into a replacement character, so matching
        // on raw bytes and decoding only values is the same as decoding first.
        let (name, value) = match memchr(b':', line) {
            None if line.is_empty() => {
                self.dispatch(out);
                return Ok(());
            }
            None => (line, &b""[..]),
            Some(0) => return Ok(()), // comment
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
                // `data_wire_len` already counts a LF after each earlier
                // value, and this value's own LF is dropped if it is the last.
                let wire_len = self.data_wire_len.saturating_add(value.len());
                if wire_len > self.max_event_bytes {
                    return Err(DecodeError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                self.data_wire_len = wire_len.saturating_add(1);
                self.data.push_str(&lossy(value));
                self.data.push('\n');
            }
            // A NUL-carrying id is ignored so that it cannot be echoed back
            // in a `Last-Event-ID` header.
            b"id" if memchr(0, value).is_none() => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&lossy(value));
                self.id_changed = true;
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry = Some(value.iter().fold(0u64, |ms, digit| {
                    ms.saturating_mul(10)
                        .saturating_add(u64::from(digit - b'0'))
                }));
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<DecodedEvent>) {
        if std::mem::take(&mut self.id_changed) && *self.last_event_id != *self.id_buffer {
            self.last_event_id = Arc::from(self.id_buffer.as_str());
        }
        self.data_wire_len = 0;
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
            last_event_id: Arc::clone(&self.last_event_id),
        });
    }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Decodes a complete stream held in memory: feed + finish, without limits.
///
/// The input is already in memory and the decoder's buffers never hold more
/// than three times it (lossy decoding), while a limit here could only be
/// reported by returning fewer events. Bound untrusted input with
/// [`Decoder::with_limits`] and [`Decoder::try_feed`] instead.
///
/// ```
/// use deepsearch_stream::sse::decode_all;
///
/// let events = decode_all(b"event: add\ndata: 1\n\ndata: no blank line");
/// assert_eq!(events.len(), 1);
/// assert_eq!((events[0].event.as_str(), events[0].data.as_str()), ("add", "1"));
/// ```
pub fn decode_all(bytes: &[u8]) -> Vec<DecodedEvent> {
    let mut decoder = Decoder::with_limits(usize::MAX, usize::MAX);
    let mut out = Vec::new();
    decoder.feed(bytes, &mut out);
    decoder.finish();
    out
}

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;
