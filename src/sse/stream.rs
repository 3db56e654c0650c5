//! `futures::Stream` adapter: bytes in, [`DecodedEvent`]s out.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use thiserror::Error;

use super::decode::{DecodeError, DecodedEvent, Decoder};

/// An error item of [`decode_stream`]: either the byte stream's own error,
/// passed through, or the decoder refusing the stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamDecodeError<E> {
    /// An error from the byte stream. Decoding goes on after it.
    #[error("transport error")]
    Transport(#[source] E),
    /// The stream broke a decoder limit. It is the last item: the byte
    /// stream is dropped (closing the connection, for an HTTP body).
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Decodes a stream of byte chunks (e.g. an HTTP response body) into events,
/// with the default limits of [`Decoder::new`].
///
/// Transport errors are passed through in order as
/// [`StreamDecodeError::Transport`], without ending the stream or resetting
/// the decoder: the consumer decides whether to stop. When the byte stream
/// ends, an incomplete trailing event is discarded (as [`Decoder::finish`]
/// does) and the event stream ends too.
///
/// A broken limit yields the events completed before it, then one
/// [`StreamDecodeError::Decode`], then the end of the stream.
///
/// ```
/// use deepsearch_stream::sse::decode_stream;
/// use futures::{executor::block_on, stream, StreamExt};
///
/// let chunks = stream::iter([Ok::<_, std::io::Error>(&b"data: a\n"[..]), Ok(b"\ndata: b\n\n")]);
/// let data: Vec<String> = block_on(decode_stream(chunks).map(|e| e.unwrap().data).collect());
/// assert_eq!(data, ["a", "b"]);
/// ```
pub fn decode_stream<S, B, E>(
    bytes: S,
) -> impl Stream<Item = Result<DecodedEvent, StreamDecodeError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    decode_stream_with(Decoder::new(), bytes)
}

/// [`decode_stream`] with a decoder of the caller's: other limits
/// ([`Decoder::with_limits`]), or one that has already read part of a stream.
///
/// ```
/// use deepsearch_stream::sse::{decode_stream_with, DecodeError, Decoder, StreamDecodeError};
/// use futures::{executor::block_on, stream, StreamExt};
///
/// let chunks = stream::iter([Ok::<_, std::io::Error>(&b"data: ok\n\ndata: too long"[..])]);
/// let items: Vec<_> = block_on(decode_stream_with(Decoder::with_limits(8, 64), chunks).collect());
/// assert_eq!(items[0].as_ref().unwrap().data, "ok");
/// assert!(matches!(
///     items[1],
///     Err(StreamDecodeError::Decode(DecodeError::LineTooLong { limit: 8 }))
/// ));
/// assert_eq!(items.len(), 2);
/// ```
pub fn decode_stream_with<S, B, E>(
    decoder: Decoder,
    bytes: S,
) -> impl Stream<Item = Result<DecodedEvent, StreamDecodeError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    DecodeStream {
        // Boxing once per stream keeps the adapter free of unsafe pin projection.
        inner: Some(Box::pin(bytes)),
        decoder,
        ready: VecDeque::new(),
        failed: None,
        scratch: Vec::new(),
    }
}

struct DecodeStream<S> {
    /// `None` once the byte stream has ended or been given up, so it is
    /// never polled again.
    inner: Option<Pin<Box<S>>>,
    decoder: Decoder,
    /// Events decoded from earlier chunks but not yet yielded.
    ready: VecDeque<DecodedEvent>,
    /// A broken limit, yielded once `ready` is drained.
    failed: Option<DecodeError>,
    /// Reused buffer for `Decoder::try_feed`.
    scratch: Vec<DecodedEvent>,
}

impl<S, B, E> Stream for DecodeStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    type Item = Result<DecodedEvent, StreamDecodeError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin (the inner stream is boxed).
        let this = self.get_mut();
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(error) = this.failed.take() {
                return Poll::Ready(Some(Err(error.into())));
            }
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(StreamDecodeError::Transport(e))))
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    let result = this.decoder.try_feed(chunk.as_ref(), &mut this.scratch);
                    this.ready.extend(this.scratch.drain(..));
                    if let Err(error) = result {
                        this.failed = Some(error);
                        // The rest of the body cannot be decoded; dropping it
                        // now frees the connection instead of leaving it open
                        // until the consumer drops this stream.
                        this.inner = None;
                    }
                }
                Poll::Ready(None) => {
                    this.decoder.finish();
                    this.inner = None;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let known = self.ready.len() + usize::from(self.failed.is_some());
        match &self.inner {
            None => (known, Some(known)),
            Some(_) => (known, None),
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
            vec![
                Ok("a".to_string()),
                Err(StreamDecodeError::Transport("reset")),
                Ok("bc".to_string())
            ]
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

    #[test]
    fn a_broken_limit_yields_earlier_events_then_the_error_then_ends() {
        let polled = std::cell::Cell::new(0);
        let chunks = stream::iter([
            Ok(&b"data: a\n\ndata: b\n"[..]),
            Err("reset"),
            Ok(b"\ndata: c\n\ndata: 0123456789"),
            Ok(b"\n\ndata: never decoded\n\n"),
        ])
        .inspect(|_| polled.set(polled.get() + 1));
        let mut events = Box::pin(decode_stream_with(Decoder::with_limits(10, 100), chunks));
        let got: Vec<_> = block_on(events.by_ref().map(|r| r.map(|e| e.data)).collect());
        assert_eq!(
            got,
            vec![
                Ok("a".to_string()),
                Err(StreamDecodeError::Transport("reset")),
                Ok("b".to_string()),
                Ok("c".to_string()),
                Err(StreamDecodeError::Decode(DecodeError::LineTooLong {
                    limit: 10
                })),
            ]
        );
        assert_eq!(events.size_hint(), (0, Some(0)));
        assert!(block_on(events.next()).is_none());
        assert_eq!(polled.get(), 3, "the byte stream is given up at the error");
    }

    #[test]
    fn the_event_limit_surfaces_as_a_decode_error() {
        let chunks = stream::repeat(Ok::<_, ()>(&b"data: 123456789\n"[..]));
        let got: Vec<_> =
            block_on(decode_stream_with(Decoder::with_limits(100, 1000), chunks).collect());
        assert_eq!(
            got,
            [Err(StreamDecodeError::Decode(DecodeError::EventTooLarge {
                limit: 1000
            }))]
        );
    }

    #[test]
    fn size_hint_counts_the_pending_error() {
        let chunks = stream::iter([Ok::<_, ()>(&b"data: a\n\ndata: 0123456789"[..])]);
        let mut events = Box::pin(decode_stream_with(Decoder::with_limits(10, 100), chunks));
        block_on(async {
            assert!(events.next().await.unwrap().is_ok());
            // The chunk is decoded: only the error is left, and nothing after it.
            assert_eq!(events.size_hint(), (1, Some(1)));
        });
    }

    #[test]
    fn default_limits_apply_to_decode_stream() {
        let long = vec![b'x'; Decoder::DEFAULT_MAX_LINE_BYTES + 1];
        let got: Vec<_> = block_on(decode_stream(stream::iter([Ok::<_, ()>(long)])).collect());
        let limit = Decoder::DEFAULT_MAX_LINE_BYTES;
        assert_eq!(
            got,
            [Err(StreamDecodeError::Decode(DecodeError::LineTooLong {
                limit
            }))]
        );
    }

    #[test]
    fn errors_display_and_chain() {
        use std::error::Error as _;
        let io = std::io::Error::other("connection reset");
        let transport = StreamDecodeError::<std::io::Error>::Transport(io);
        assert_eq!(transport.to_string(), "transport error");
        assert_eq!(transport.source().unwrap().to_string(), "connection reset");
        let decode =
            StreamDecodeError::<std::io::Error>::from(DecodeError::EventTooLarge { limit: 5 });
        assert_eq!(
            decode.to_string(),
            "SSE event data larger than the limit of 5 bytes"
        );
    }
}
