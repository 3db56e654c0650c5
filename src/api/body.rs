//! The one rule both faces read a request body by: keep it up to `--max-body-bytes`;
//! past that, read on (discarding) up to [`DRAIN_MAX_BYTES`] so that a client still
//! writing its body reads the 413 rather than a connection reset; a body declared
//! bigger than either is refused without reading.

use bytes::Bytes;

/// Bytes of an oversized body read (and discarded) at most before answering 413.
pub const DRAIN_MAX_BYTES: usize = 1 << 20;

/// What a face read of a request's body, for [`Service::handle`](super::Service::handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// No body was read: a `GET`, whose request is its query string.
    Absent,
    /// The whole body, within the cap.
    Read(Bytes),
    /// The body is over the cap (413).
    TooLarge,
    /// The body could not be read: why (400).
    Unreadable(String),
    /// The body did not arrive within this `--body-timeout` (408).
    TimedOut(std::time::Duration),
}

/// Whether to keep a chunk of the body, and whether to read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStep {
    /// Within the cap: keep it and read on.
    Keep,
    /// Over the cap: drop what was kept, read on to drain the client.
    Drain,
    /// Over the cap and drained enough: stop reading, the body is [`RequestBody::TooLarge`].
    Stop,
}

/// The cap on one request's body; `declared` is its `Content-Length`, when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyCap {
    limit: usize,
    declared: Option<usize>,
    seen: usize,
}

impl BodyCap {
    pub fn new(limit: usize, declared: Option<usize>) -> Self {
        BodyCap {
            limit,
            declared,
            seen: 0,
        }
    }

    /// Bytes kept at most.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// False when the declared length is too big even to drain: the body is
    /// [`RequestBody::TooLarge`] without reading any of it.
    pub fn worth_reading(&self) -> bool {
        self.declared
            .is_none_or(|len| len <= self.limit.max(DRAIN_MAX_BYTES))
    }

    /// Bytes read at most when the body is over the cap (the declared length if smaller).
    pub fn drain_to(&self) -> usize {
        self.declared
            .map_or(DRAIN_MAX_BYTES, |d| d.min(DRAIN_MAX_BYTES))
    }

    /// Counts the next chunk of `len` bytes.
    pub fn step(&mut self, len: usize) -> BodyStep {
        self.seen = self.seen.saturating_add(len);
        if self.seen <= self.limit {
            BodyStep::Keep
        } else if self.seen >= self.drain_to() {
            BodyStep::Stop
        } else {
            BodyStep::Drain
        }
    }

    /// What was read, once the body ended (or reading stopped) with `kept` in hand.
    pub fn finish(&self, kept: Bytes) -> RequestBody {
        if self.seen > self.limit || !self.worth_reading() {
            RequestBody::TooLarge
        } else {
            RequestBody::Read(kept)
        }
    }

    /// What was read when the body did not arrive within `wait`: a body already known to
    /// be over the cap (by its `Content-Length` or what came of it) is still the 413.
    pub fn timed_out(&self, wait: std::time::Duration) -> RequestBody {
        let over = self.seen > self.limit || self.declared.is_some_and(|d| d > self.limit);
        if over {
            RequestBody::TooLarge
        } else {
            RequestBody::TimedOut(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_stalls_is_the_timeout_unless_known_too_large() {
        let wait = std::time::Duration::from_secs(2);
        let mut cap = BodyCap::new(4, Some(3));
        cap.step(1);
        assert_eq!(cap.timed_out(wait), RequestBody::TimedOut(wait));
        assert_eq!(
            BodyCap::new(4, Some(5)).timed_out(wait),
            RequestBody::TooLarge
        );
        let mut cap = BodyCap::new(4, None);
        cap.step(5);
        assert_eq!(cap.timed_out(wait), RequestBody::TooLarge);
    }

    #[test]
    fn within_the_cap_everything_is_kept() {
        let mut cap = BodyCap::new(4, None);
        assert!(cap.worth_reading());
        assert_eq!(cap.step(2), BodyStep::Keep);
        assert_eq!(cap.step(2), BodyStep::Keep);
        assert_eq!(
            cap.finish(Bytes::from_static(b"abcd")),
            RequestBody::Read(Bytes::from_static(b"abcd"))
        );
    }

    #[test]
    fn over_the_cap_it_drains_up_to_the_declared_length_or_the_budget() {
        let mut cap = BodyCap::new(4, Some(10));
        assert_eq!(cap.step(6), BodyStep::Drain);
        assert_eq!(cap.step(4), BodyStep::Stop);
        assert_eq!(cap.finish(Bytes::new()), RequestBody::TooLarge);
        let mut cap = BodyCap::new(4, None);
        assert_eq!(cap.step(5), BodyStep::Drain);
        assert_eq!(cap.step(DRAIN_MAX_BYTES), BodyStep::Stop);
        // A body that ends while draining is too large all the same.
        let mut cap = BodyCap::new(4, None);
        assert_eq!(cap.step(5), BodyStep::Drain);
        assert_eq!(cap.finish(Bytes::new()), RequestBody::TooLarge);
    }

    #[test]
    fn a_declared_length_too_big_to_drain_is_not_read() {
        let cap = BodyCap::new(4, Some(DRAIN_MAX_BYTES + 1));
        assert!(!cap.worth_reading());
        assert_eq!(cap.finish(Bytes::new()), RequestBody::TooLarge);
        // A cap above the drain budget reads what it may keep.
        assert!(BodyCap::new(2 * DRAIN_MAX_BYTES, Some(DRAIN_MAX_BYTES + 1)).worth_reading());
    }
}
