//! Reads structured inputs out of the fuzzer's bytes.
//!
//! Hand-rolled rather than `arbitrary`, so that the formats stay simple to
//! write seeds in (see `fuzz/README.md`) and so that the corpus test needs no
//! extra dependency. Every read succeeds: past the end, bytes read as 0 and
//! strings as empty, so every input is valid.

#[derive(Debug)]
pub(crate) struct BytesReader<'a> {
    rest: &'a [u8],
}

impl<'a> BytesReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BytesReader { rest: data }
    }

    pub(crate) fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub(crate) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    /// A length byte, then that many bytes.
    pub(crate) fn short_bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.byte());
        self.bytes(len)
    }

    /// [`BytesReader::short_bytes`] decoded as UTF-8, invalid sequences replaced.
    pub(crate) fn short_string(&mut self) -> String {
        String::from_utf8_lossy(self.short_bytes()).into_owned()
    }

    pub(crate) fn u64_le(&mut self) -> u64 {
        let mut le = [0u8; 8];
        let taken = self.bytes(8);
        le[..taken.len()].copy_from_slice(taken);
        u64::from_le_bytes(le)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }
}
