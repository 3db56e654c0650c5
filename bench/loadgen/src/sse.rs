//! Incremental decoding of an HTTP/1.1 response body (chunked, sized or up to EOF) and
//! of the Server-Sent Events inside it.
//!
//! Every stack's frames are accepted: `\n`, `\r\n` or `\r` line ends (sse-starlette
//! writes `\r\n`), `id:` lines or none, heartbeats as `data: heartbeat` or as a
//! comment-only event (`: ping`, FastAPI's native keep-alive).

use memchr::{memchr2, memmem};

/// One dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A message; `seq` is the `"seq"` field of its data when parsing was asked for.
    Message { seq: Option<u64> },
    /// `data: heartbeat`, or an event made of comments only.
    Heartbeat,
    /// `data: [DONE]`.
    Done,
}

/// Splits lines across reads and assembles events.
#[derive(Debug)]
pub struct SseParser {
    partial: Vec<u8>,
    skip_lf: bool,
    parse_seq: bool,
    has_data: bool,
    has_comment: bool,
    kind: Option<Event>,
}

impl SseParser {
    pub fn new(parse_seq: bool) -> Self {
        SseParser {
            partial: Vec::new(),
            skip_lf: false,
            parse_seq,
            has_data: false,
            has_comment: false,
            kind: None,
        }
    }

    /// Feeds body bytes; `on_event` gets every event completed by them.
    pub fn feed(&mut self, input: &[u8], on_event: &mut impl FnMut(Event)) {
        let mut start = 0;
        if self.skip_lf {
            self.skip_lf = false;
            if input.first() == Some(&b'\n') {
                start = 1;
            }
        }
        while start < input.len() {
            let Some(i) = memchr2(b'\r', b'\n', &input[start..]) else {
                self.partial.extend_from_slice(&input[start..]);
                return;
            };
            let end = start + i;
            if self.partial.is_empty() {
                self.line(&input[start..end], on_event);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&input[start..end]);
                self.line(&line, on_event);
                line.clear();
                self.partial = line;
            }
            start = end + 1;
            if input[end] == b'\r' {
                match input.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(Event)) {
        if line.is_empty() {
            if let Some(kind) = self.kind.take() {
                on_event(kind);
            } else if self.has_comment && !self.has_data {
                on_event(Event::Heartbeat);
            }
            self.has_data = false;
            self.has_comment = false;
            return;
        }
        if line[0] == b':' {
            self.has_comment = true;
            return;
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            return; // id:, event:, retry: and unknown fields
        };
        if self.has_data {
            return; // a continuation line of a multi-line data field
        }
        self.has_data = true;
        let value = value.strip_prefix(b" ").unwrap_or(value);
        self.kind = Some(match value {
            b"[DONE]" => Event::Done,
            b"heartbeat" => Event::Heartbeat,
            _ => Event::Message {
                seq: if self.parse_seq { seq_of(value) } else { None },
            },
        });
    }
}

/// The number after the first `"seq":` in the data (within its first 128 bytes).
fn seq_of(data: &[u8]) -> Option<u64> {
    let head = &data[..data.len().min(128)];
    let at = memmem::find(head, b"\"seq\":")? + 6;
    let mut n: u64 = 0;
    let mut digits = 0;
    for &b in data[at..].iter().skip_while(|b| **b == b' ') {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(n)
}

/// How the response body is delimited.
#[derive(Debug)]
pub enum Body {
    Chunked(ChunkState),
    Length(u64),
    UntilEof,
}

#[derive(Debug, Clone, Copy)]
pub enum ChunkState {
    Size { size: u64, in_ext: bool },
    Data(u64),
    DataEnd,
    Trailer { line_empty: bool },
    Done,
}

impl Body {
    pub fn chunked() -> Self {
        Body::Chunked(ChunkState::Size {
            size: 0,
            in_ext: false,
        })
    }

    /// Decodes `input`, passing body bytes to `out`; true once the body is complete.
    pub fn feed(&mut self, input: &[u8], out: &mut impl FnMut(&[u8])) -> Result<bool, String> {
        match self {
            Body::UntilEof => {
                out(input);
                Ok(false)
            }
            Body::Length(left) => {
                let take = (*left).min(input.len() as u64) as usize;
                out(&input[..take]);
                *left -= take as u64;
                Ok(*left == 0)
            }
            Body::Chunked(state) => feed_chunked(state, input, out),
        }
    }
}

fn feed_chunked(
    state: &mut ChunkState,
    input: &[u8],
    out: &mut impl FnMut(&[u8]),
) -> Result<bool, String> {
    let mut i = 0;
    while i < input.len() {
        match state {
            ChunkState::Size { size, in_ext } => {
                let b = input[i];
                i += 1;
                match b {
                    b'\n' => {
                        *state = if *size == 0 {
                            ChunkState::Trailer { line_empty: true }
                        } else {
                            ChunkState::Data(*size)
                        };
                    }
                    b'\r' => {}
                    _ if *in_ext => {}
                    b';' | b' ' | b'\t' => *in_ext = true,
                    _ => {
                        let digit = (b as char)
                            .to_digit(16)
                            .ok_or_else(|| format!("bad chunk size byte {b:#x}"))?;
                        *size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(digit)))
                            .ok_or("chunk size overflow")?;
                    }
                }
            }
            ChunkState::Data(left) => {
                let take = (*left).min((input.len() - i) as u64) as usize;
                out(&input[i..i + take]);
                i += take;
                *left -= take as u64;
                if *left == 0 {
                    *state = ChunkState::DataEnd;
                }
            }
            ChunkState::DataEnd => {
                let b = input[i];
                i += 1;
                if b == b'\n' {
                    *state = ChunkState::Size {
                        size: 0,
                        in_ext: false,
                    };
                }
            }
            ChunkState::Trailer { line_empty } => {
                let b = input[i];
                i += 1;
                match b {
                    b'\n' if *line_empty => *state = ChunkState::Done,
                    b'\n' => *line_empty = true,
                    b'\r' => {}
                    _ => *line_empty = false,
                }
            }
            ChunkState::Done => return Ok(true),
        }
    }
    Ok(matches!(state, ChunkState::Done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(parts: &[&[u8]], parse_seq: bool) -> Vec<Event> {
        let mut p = SseParser::new(parse_seq);
        let mut out = Vec::new();
        for part in parts {
            p.feed(part, &mut |e| out.push(e));
        }
        out
    }

    #[test]
    fn line_ends_and_kinds() {
        let body: &[u8] =
            b"id: 1\ndata: {\"type\": \"bench\", \"data\": {\"seq\": 41, \"text\": \"x\"}}\n\n\
            data: heartbeat\r\n\r\n: ping\n\ndata: {\"seq\":7}\r\rdata: [DONE]\n\n";
        let want = vec![
            Event::Message { seq: Some(41) },
            Event::Heartbeat,
            Event::Heartbeat,
            Event::Message { seq: Some(7) },
            Event::Done,
        ];
        assert_eq!(events(&[body], true), want);
        // Every split point gives the same events.
        for cut in 0..body.len() {
            assert_eq!(
                events(&[&body[..cut], &body[cut..]], true),
                want,
                "cut {cut}"
            );
        }
        assert_eq!(events(&[body], false)[0], Event::Message { seq: None });
    }

    #[test]
    fn chunked_bodies() {
        let wire: &[u8] = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: a\r\n\r\n";
        for cut in 0..wire.len() {
            let mut body = Body::chunked();
            let mut got = Vec::new();
            let a = body
                .feed(&wire[..cut], &mut |b| got.extend_from_slice(b))
                .unwrap();
            let b = body
                .feed(&wire[cut..], &mut |b| got.extend_from_slice(b))
                .unwrap();
            assert!(!a || cut == wire.len());
            assert!(b, "cut {cut}");
            assert_eq!(got, b"hello, world");
        }
    }
}
