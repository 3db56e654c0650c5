//! A search engine that never answers: it records when a call starts and when that call
//! is dropped, so a test can tell a cancelled search from one still running.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deepsearch_stream::deepsearch::{Brain, DeepSearch, Settings};
use deepsearch_stream::search::{Document, SearchEngine, SearchError};
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct Hangs {
    /// Notified when a call starts.
    pub started: Arc<Notify>,
    dropped: Arc<Mutex<Option<Instant>>>,
}

impl Hangs {
    /// An offline `DeepSearch` on this engine alone, whose engine timeout no test
    /// outlasts; and the engine, to watch.
    pub fn deepsearch() -> (Arc<Hangs>, DeepSearch) {
        let hangs = Arc::new(Hangs::default());
        let settings = Settings {
            engine_timeout: Duration::from_secs(600),
            ..Settings::default()
        };
        let engine = Arc::clone(&hangs) as Arc<dyn SearchEngine>;
        let deepsearch = DeepSearch::new(vec![engine], Brain::Offline, settings).unwrap();
        (hangs, deepsearch)
    }

    /// When the last call was dropped, if one was.
    pub fn dropped_at(&self) -> Option<Instant> {
        *self.dropped.lock().unwrap()
    }
}

/// Drop guard that records when an in-flight call was abandoned.
struct Abandoned(Arc<Mutex<Option<Instant>>>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

impl SearchEngine for Hangs {
    fn name(&self) -> &str {
        "hangs"
    }

    fn search<'a>(
        &'a self,
        _query: &'a str,
        _limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        let guard = Abandoned(Arc::clone(&self.dropped));
        let started = Arc::clone(&self.started);
        Box::pin(async move {
            let _guard = guard;
            started.notify_one();
            futures::future::pending::<()>().await;
            Ok(Vec::new())
        })
    }
}
