//! A circuit breaker per engine, shared by every search of one service: an engine that
//! failed `failures` calls in a row is skipped for `cooldown`, so a dead engine does not
//! cost every round its timeout; then one call tries it again (half-open), and a success
//! closes the circuit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When an engine's circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failed calls in a row that open the circuit; 0 never opens it.
    pub failures: u32,
    /// How long an open circuit skips the engine before one call tries it again.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: 3,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// A circuit that changed with a call's outcome: said in a `warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Now skipped for the cooldown, after this many failures in a row.
    Opened(u32),
    /// The trial call succeeded: the engine is used again.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    failures_in_row: u32,
    open_until: Option<Instant>,
    /// A trial call of a half-open circuit is in flight; others still skip.
    trial: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Breakers {
    settings: BreakerSettings,
    engines: Mutex<HashMap<String, State>>,
}

impl Breakers {
    pub fn new(settings: BreakerSettings) -> Self {
        Breakers {
            settings,
            engines: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    fn with<T>(&self, engine: &str, f: impl FnOnce(&mut State) -> T) -> T {
        let mut map = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(engine.to_string()).or_default())
    }

    /// Whether a call to `engine` may go out now: `None` while its circuit is open,
    /// else the pass to [`record`](Self::record) the outcome with.
    pub fn allow(&self, engine: &str) -> Option<Pass> {
        self.with(engine, |s| match s.open_until {
            None => Some(Pass { trial: false }),
            Some(until) if Instant::now() >= until && !s.trial => {
                s.trial = true;
                Some(Pass { trial: true })
            }
            Some(_) => None,
        })
    }

    /// Records the outcome of a call let out with `pass`; returns the change of the
    /// circuit, if any.
    pub fn record(&self, engine: &str, pass: Pass, ok: bool) -> Option<Change> {
        let settings = self.settings;
        self.with(engine, |s| {
            let was_open = s.open_until.is_some();
            if pass.trial {
                s.trial = false;
            }
            if ok {
                s.failures_in_row = 0;
                s.open_until = None;
                return was_open.then_some(Change::Closed);
            }
            s.failures_in_row = s.failures_in_row.saturating_add(1);
            // A call sent before the circuit opened adds nothing; a failed trial
            // reopens it as the first opening did.
            let opens = if was_open {
                pass.trial
            } else {
                settings.failures > 0 && s.failures_in_row >= settings.failures
            };
            if !opens {
                return None;
            }
            s.open_until = Some(Instant::now() + settings.cooldown);
            Some(Change::Opened(s.failures_in_row))
        })
    }
}

impl Breakers {
    /// Forgets a call that says nothing of the engine (cut short by the search's own
    /// deadline): a trial it was is open for another call.
    pub fn release(&self, engine: &str, pass: Pass) {
        if pass.trial {
            self.with(engine, |s| s.trial = false);
        }
    }
}

/// Leave for one call, from [`Breakers::allow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    trial: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_in_a_row_and_closes_after_a_trial() {
        let b = Breakers::new(BreakerSettings {
            failures: 2,
            cooldown: Duration::from_secs(10),
        });
        let call = |ok: bool| {
            let pass = b.allow("e").expect("closed");
            b.record("e", pass, ok)
        };
        assert_eq!(call(false), None);
        assert_eq!(call(true), None, "a success resets the count");
        let late = b.allow("e").unwrap();
        assert_eq!(call(false), None);
        assert_eq!(call(false), Some(Change::Opened(2)));
        assert_eq!(b.record("e", late, false), None, "sent before it opened");
        assert!(b.allow("e").is_none());
        assert!(b.allow("other").is_some(), "per engine");
        tokio::time::advance(Duration::from_secs(10)).await;
        let trial = b.allow("e").expect("the trial call");
        assert!(b.allow("e").is_none(), "one trial at a time");
        assert_eq!(
            b.record("e", trial, false),
            Some(Change::Opened(4)),
            "reopened"
        );
        assert!(b.allow("e").is_none());
        tokio::time::advance(Duration::from_secs(10)).await;
        let trial = b.allow("e").unwrap();
        assert_eq!(b.record("e", trial, true), Some(Change::Closed));
        assert!(b.allow("e").is_some() && b.allow("e").is_some());
    }

    #[test]
    fn zero_failures_never_opens() {
        let b = Breakers::new(BreakerSettings {
            failures: 0,
            cooldown: Duration::from_secs(10),
        });
        for _ in 0..10 {
            let pass = b.allow("e").unwrap();
            assert_eq!(b.record("e", pass, false), None);
        }
    }
}
