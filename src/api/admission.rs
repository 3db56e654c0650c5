//! The concurrency limit: how many searches run at once, and the permit each holds.
//!
//! Its own module so that the recorder (which holds a permit until its search ends) and
//! the service (which hands permits out) depend on it, not on each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ApiError, ErrorCode, Route};
use crate::metrics;

/// Hands out at most `max` permits at a time.
#[derive(Debug, Clone)]
pub struct Admission {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Admission {
    pub fn new(max: usize) -> Self {
        Admission {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// Permits held now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Takes a slot, or refuses with 503 `overloaded` and `Retry-After`.
    pub fn admit(&self, route: Route) -> Result<StreamPermit, ApiError> {
        self.admit_at(route.path())
    }

    /// [`admit`](Self::admit) for a request counted under `path` (MCP's, which is no
    /// [`Route`]).
    pub fn admit_at(&self, path: &'static str) -> Result<StreamPermit, ApiError> {
        let taken = self.open.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            let mut e = ApiError::new(
                503,
                ErrorCode::Overloaded,
                None,
                format!(
                    "{} searches are in progress, the most this server runs at once; retry shortly",
                    self.max
                ),
            );
            e.retry_after = Some(1);
            return Err(e);
        }
        Ok(StreamPermit {
            open: Arc::clone(&self.open),
            path,
            started: Instant::now(),
            status: 200,
        })
    }
}

/// One slot of the concurrency limit, and the request's metrics; released (and the
/// metrics recorded) when dropped.
#[derive(Debug)]
pub struct StreamPermit {
    open: Arc<AtomicUsize>,
    /// The route's path, the request's label in the metrics.
    path: &'static str,
    started: Instant,
    status: u16,
}

impl StreamPermit {
    /// The status the request is counted under (200 unless the search failed to start).
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        metrics::global().request(self.path, self.status, self.started.elapsed());
    }
}

/// Counts a request refused before it took a permit.
pub(crate) fn count_refusal(route: Route, status: u16) {
    metrics::global().request(route.path(), status, Duration::ZERO);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_and_released_on_drop() {
        let admission = Admission::new(1);
        let permit = admission.admit(Route::DeepSearch).unwrap();
        assert_eq!(admission.open(), 1);
        let e = admission.admit(Route::DeepSearch).unwrap_err();
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (503, ErrorCode::Overloaded, Some(1))
        );
        assert_eq!(admission.open(), 1, "a refusal takes no slot");
        drop(permit);
        assert_eq!(admission.open(), 0);
        assert!(admission.admit(Route::GenieTool).is_ok());
    }
}
