//! What the SSE integration tests compare decoders by: the events of a whole
//! stream plus the state the decoder keeps across streams. Included by path
//! (`#[path = "support/sse.rs"]`), apart from the HTTP test server in
//! `support/mod.rs`, so the codec tests do not build a server they never use.

use deepsearch_stream::sse::{DecodedEvent, Decoder};

/// Everything a decoder reports for one stream: its events, then (after
/// `finish`) its last event id and reconnection time.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<DecodedEvent>,
    pub last_event_id: String,
    pub retry: Option<u64>,
}

impl Outcome {
    /// `events` together with what `decoder` kept of the stream.
    pub fn of(decoder: &Decoder, events: Vec<DecodedEvent>) -> Self {
        Outcome {
            events,
            last_event_id: decoder.last_event_id().to_owned(),
            retry: decoder.retry(),
        }
    }
}

/// Feeds `chunks` to a decoder with the default limits, then ends the stream.
pub fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut events);
    }
    decoder.finish();
    Outcome::of(&decoder, events)
}
