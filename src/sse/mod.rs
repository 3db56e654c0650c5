//! Server-sent events (`text/event-stream`) codec, exact to the WHATWG HTML
//! standard, § 9.2 "Server-sent events".
//!
//! Pure byte-level code: no sockets, no HTTP framework, no Python. Servers
//! build frames with [`Event`]; clients and proxies parse bytes with
//! [`Decoder`] (push, chunk by chunk), [`decode_all`] (whole buffer) or
//! [`decode_stream`] (a `futures::Stream` of chunks).
//!
//! The decoder follows "Interpreting an event stream" to the letter: one
//! leading BOM is ignored; CRLF, LF and CR all end lines (also when a CRLF is
//! split across chunks); invalid UTF-8 is decoded lossily; `:` lines are
//! comments; one space after the field colon is dropped; `id` values holding
//! NUL are ignored; `retry` needs ASCII digits only; an event is dispatched
//! by a blank line only if it has data, and an incomplete event at the end of
//! the stream is discarded.
//!
//! Memory is bounded: [`Decoder`] limits the length of a line and the size of
//! an event's data, and reports a stream breaking either as a
//! [`DecodeError`] instead of truncating it (see [`Decoder#limits`]).
//!
//! ```
//! use deepsearch_stream::sse::{decode_all, Event};
//!
//! let mut wire = Vec::new();
//! Event::new().with_comment("stream start").encode(&mut wire).unwrap();
//! Event::data("line one\r\nline two").with_event("delta").with_id("1").encode(&mut wire).unwrap();
//! Event::data("{\"done\":true}").encode(&mut wire).unwrap();
//!
//! let events = decode_all(&wire);
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].event, "delta");
//! assert_eq!(events[0].data, "line one\nline two"); // line endings come back as LF
//! assert_eq!(events[1].event, "message");
//! assert_eq!(&*events[1].last_event_id, "1"); // the id persists until changed
//! ```

pub mod decode;
pub mod encode;
pub mod stream;

pub use decode::{decode_all, DecodeError, DecodedEvent, Decoder};
pub use encode::{encode_comment_lines, encode_data_lines, EncodeError, Event};
pub use stream::{decode_stream, decode_stream_with, StreamDecodeError};
