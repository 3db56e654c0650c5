//! `futures::Stream` adapter: bytes in, [`DecodedEvent`]s out.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use super::decode::{DecodedEvent, Decoder};

/// Decodes a stream of byte chunks (e.g. an HTTP response body) into events.
///
/// Transport errors are passed through in order, without ending the stream
/// or resetting the decoder: the consumer decides whether to stop. When the
/// byte stream ends, an incomplete trailing event is discarded (as
/// [`Decoder::finish`] does) and the event stream ends too.
///
/// ```
/// use deepsearch_stream::sse::decode_stream;
/// use futures::{executor::block_on, stream, StreamExt};
///
/// let chunks = stream::iter([Ok::<_, std::io::Error>(&b"data: a\n"[..]), Ok(b"\ndata: b\n\n")]);
/// let data: Vec<String> = block_on(decode_stream(chunks).map(|e| e.unwrap().data).collect());
/// assert_eq!(data, ["a", "b"]);
/// ```
pub fn decode_stream<S, B, E>(bytes: S) -> impl Stream<Item = Result<DecodedEvent, E>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    DecodeStream {
        // Boxing once per stream keeps the adapter free of unsafe pin projection.
        inner: Some(Box::pin(bytes)),
        decoder: Decoder::new(),
        ready: VecDeque::new(),
        scratch: Vec::new(),
    }
}

struct DecodeStream<S> {
    /// `None` once the byte stream has ended, so it is never polled again.
    inner: Option<Pin<Box<S>>>,
    decoder: Decoder,
    /// Events decoded from earlier chunks but not yet yielded.
    ready: VecDeque<DecodedEvent>,
    /// Reused buffer for `Decoder::feed`.
    scratch: Vec<DecodedEvent>,
}

impl<S, B, E> Stream for DecodeStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    type Item = Result<DecodedEvent, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin (the inner stream is boxed).
        let this = self.get_mut();
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(chunk))) => {
                    this.decoder.feed(chunk.as_ref(), &mut this.scratch);
                    this.ready.extend(this.scratch.drain(..));
                }
                Poll::Ready(None) => {
                    this.decoder.finish();
                    this.inner = None;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            None => (self.ready.len(), Some(self.ready.len())),
            Some(_) => (self.ready.len(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::{stream, StreamExt};

    use super::*;

    #[test]
    fn events_span_chunks_and_trailing_partial_is_dropped() {
        let chunks: Vec<Result<Vec<u8>, String>> = vec![
            Ok(b"\xEF\xBB".to_vec()),
            Ok(b"\xBFid: 1\r".to_vec()),
            Ok(b"\ndata: one\r".to_vec()),
            Ok(Vec::new()),
            Ok(b"\n\r\nevent: x\ndata: two\n\ndata: partial\n".to_vec()),
        ];
        let got: Vec<_> = block_on(decode_stream(stream::iter(chunks)).collect());
        assert_eq!(
            got,
            vec![
                Ok(DecodedEvent {
                    event: "message".into(),
                    data: "one".into(),
                    last_event_id: "1".into()
                }),
                Ok(DecodedEvent {
                    event: "x".into(),
                    data: "two".into(),
                    last_event_id: "1".into()
                }),
            ]
        );
    }

    #[test]
    fn errors_pass_through_in_order_and_decoding_continues() {
        let chunks: Vec<Result<&[u8], &str>> =
            vec![Ok(b"data: a\n\ndata: b"), Err("reset"), Ok(b"c\n\n")];
        let got: Vec<_> = block_on(
            decode_stream(stream::iter(chunks))
                .map(|r| r.map(|e| e.data))
                .collect(),
        );
        assert_eq!(
            got,
            vec![Ok("a".to_string()), Err("reset"), Ok("bc".to_string())]
        );
    }

    #[test]
    fn stays_ended_after_none() {
        let chunks = stream::iter([Ok::<_, ()>(b"data: x\n\n".to_vec())]);
        let mut events = Box::pin(decode_stream(chunks));
        block_on(async {
            assert!(events.next().await.is_some());
            assert!(events.next().await.is_none());
            assert!(events.next().await.is_none());
        });
    }

    #[test]
    fn works_with_bytes_and_non_unpin_streams() {
        let chunks = stream::unfold(0u8, |n| async move {
            (n < 3).then(|| {
                (
                    Ok::<_, ()>(bytes::Bytes::from(format!("data: {n}\n\n"))),
                    n + 1,
                )
            })
        });
        let got: Vec<_> = block_on(decode_stream(chunks).map(|e| e.unwrap().data).collect());
        assert_eq!(got, ["0", "1", "2"]);
    }
}
