//! The secret of a resumable stream. Every event id a stream sends is `<key>.<n>`, the key
//! 128 bits from the operating system's CSPRNG, so the `Last-Event-ID` a client sends back
//! (`EventSource` does, with no code) proves it read that stream: a request id, a bare
//! number or a guessed key finds nothing.
//!
//! A log is stored under [`StreamKey::log_name`], a SHA-256 digest of the key and the
//! scope that started the stream (its API key): the store is never searched by the secret
//! itself (no comparison whose time depends on how much of a guess was right), and a
//! resume under another API key looks up another name, finding nothing.

use std::fmt;

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of randomness in a key.
const KEY_BYTES: usize = 16;
/// Length of a key as written: lowercase hex.
pub const KEY_CHARS: usize = KEY_BYTES * 2;

/// A stream's key: [`KEY_CHARS`] lowercase hex characters (URL- and header-safe).
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(String);

/// The operating system has no randomness to give (it does not happen on a working one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct NoRandomness;

impl StreamKey {
    /// A new random key.
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut bytes = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| NoRandomness)?;
        Ok(StreamKey(hex(&bytes)))
    }

    /// A key as a client sent it back; `None` unless it has the shape of one.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == KEY_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| StreamKey(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name its log is stored under, for a stream started in `scope` (the digest of
    /// the API key that started it, "" without one).
    pub fn log_name(&self, scope: &str) -> String {
        let mut input = Vec::with_capacity(scope.len() + 1 + self.0.len());
        input.extend_from_slice(scope.as_bytes());
        input.push(0);
        input.extend_from_slice(self.0.as_bytes());
        hex(digest(&SHA256, &input).as_ref())
    }
}

/// The name the log of an AI SDK chat is stored under: its chat id is all the SDK's
/// resume sends (`GET /api/chat/{id}/stream`), so the chat id, within its `scope`, names
/// it (the extra `\0` keeps it apart from every [`StreamKey::log_name`]).
pub fn chat_log_name(scope: &str, chat_id: &str) -> String {
    let mut input = Vec::with_capacity(scope.len() + 6 + chat_id.len());
    input.extend_from_slice(scope.as_bytes());
    input.extend_from_slice(b"\0chat\0");
    input.extend_from_slice(chat_id.as_bytes());
    hex(digest(&SHA256, &input).as_ref())
}

/// A scope for secrets such as API keys: their SHA-256 digest, so neither logs nor store
/// names hold the secret itself.
pub fn scope_of(secret: &[u8]) -> String {
    hex(digest(&SHA256, secret).as_ref())
}

impl fmt::Debug for StreamKey {
    // A secret: never printed whole, in logs or panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamKey({}…)", &self.0[..4])
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_hex_and_parse_back() {
        let (a, b) = (
            StreamKey::generate().unwrap(),
            StreamKey::generate().unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), KEY_CHARS);
        assert_eq!(StreamKey::parse(a.as_str()), Some(a.clone()));
        for bad in [
            "",
            "12",
            &a.as_str().to_uppercase(),
            &format!("{}0", a.as_str()),
        ] {
            assert_eq!(StreamKey::parse(bad), None, "{bad}");
        }
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn log_names_depend_on_key_and_scope() {
        let key = StreamKey::parse("00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(key.log_name(""), key.log_name(""));
        assert_ne!(key.log_name(""), key.log_name(&scope_of(b"k1")));
        assert_ne!(
            key.log_name(&scope_of(b"k1")),
            key.log_name(&scope_of(b"k2"))
        );
        assert_eq!(key.log_name("").len(), 64);
        assert!(!key.log_name("").contains(key.as_str()));
    }
}
