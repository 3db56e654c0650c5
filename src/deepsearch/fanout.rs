//! One round's search: every sub-query on every engine at once, bounded, each call with
//! its own deadline, then merged in a deterministic order with duplicates removed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tracing::Instrument;

use super::breaker::{Breakers, Change};
use super::dedup::Seen;
use super::messages::{DocData, QueryResults, WarningData};
use crate::search::{Document, SearchEngine, SearchError};
use crate::telemetry;

/// A document new to this search, with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub doc: Document,
    pub round: usize,
    pub query: usize,
    /// Position among the documents its sub-query contributed (0 = first).
    pub rank: usize,
}

/// What a round's search produced.
#[derive(Debug, Default)]
pub(crate) struct RoundResults {
    /// Per sub-query, in plan order.
    pub results: Vec<QueryResults>,
    pub found: Vec<Found>,
    /// Per failed call, in sub-query then engine order.
    pub warnings: Vec<WarningData>,
    /// Engine calls made, and how many of them failed.
    pub calls: u64,
    pub failures: u64,
    /// Calls not made because the search-call budget ran out.
    pub cut: usize,
    /// Engines skipped because their circuit is open, in engine order.
    pub skipped: Vec<String>,
    /// Circuits this round's calls opened or closed, in completion order.
    pub changes: Vec<(String, Change)>,
}

/// Limits of one fan-out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FanoutLimits {
    pub docs_per_query: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    /// `timeout` is what is left of the search's deadline, shorter than an engine's: a
    /// call it cuts off says nothing of the engine's health.
    pub by_deadline: bool,
}

/// What a grid of calls did besides its results.
#[derive(Debug, Default)]
struct GridSpend {
    calls: u64,
    failures: u64,
    cut: usize,
    skipped: Vec<String>,
    changes: Vec<(String, Change)>,
}

/// Runs the (sub-query, engine) pairs, at most `concurrency` at a time, and returns the
/// outcomes as a grid `[query][engine]`. Order of completion does not matter. At most
/// `max_calls` calls go out, in sub-query then engine order; an engine whose circuit is
/// open is skipped. Skipped and cut pairs are empty results.
async fn search_grid(
    engines: &[Arc<dyn SearchEngine>],
    queries: &[String],
    round: usize,
    limits: FanoutLimits,
    breakers: &Breakers,
    max_calls: u64,
) -> (Vec<Vec<Result<Vec<Document>, SearchError>>>, GridSpend) {
    let mut spend = GridSpend::default();
    let mut jobs = Vec::new();
    for q in 0..queries.len() {
        for (e, engine) in engines.iter().enumerate() {
            if jobs.len() as u64 >= max_calls {
                spend.cut += 1;
                continue;
            }
            match breakers.allow(engine.name()) {
                Some(pass) => jobs.push((q, e, pass)),
                None => {
                    if !spend.skipped.iter().any(|n| n == engine.name()) {
                        spend.skipped.push(engine.name().to_string());
                    }
                }
            }
        }
    }
    spend.calls = jobs.len() as u64;
    let calls = futures::stream::iter(jobs)
        .map(|(q, e, pass)| {
            let engine = &engines[e];
            let query = queries[q].as_str();
            let span = telemetry::engine_span(engine.name(), round);
            async move {
                let started = std::time::Instant::now();
                let call = engine
                    .search(query, limits.docs_per_query)
                    .instrument(span.clone());
                let (outcome, cut_off) = match tokio::time::timeout(limits.timeout, call).await {
                    Ok(result) => (result, false),
                    Err(_) => (
                        Err(SearchError::Timeout(limits.timeout)),
                        limits.by_deadline,
                    ),
                };
                match &outcome {
                    Ok(docs) => {
                        span.record("docs", telemetry::int(docs.len()));
                    }
                    Err(e) => telemetry::record_error(&span, e),
                }
                crate::metrics::global().engine_call(
                    engine.name(),
                    outcome.is_ok(),
                    started.elapsed(),
                );
                let change = if cut_off {
                    breakers.release(engine.name(), pass);
                    None
                } else {
                    breakers.record(engine.name(), pass, outcome.is_ok())
                };
                (q, e, outcome, change)
            }
        })
        .buffer_unordered(limits.concurrency.max(1));
    let mut grid: Vec<Vec<Result<Vec<Document>, SearchError>>> = (0..queries.len())
        .map(|_| (0..engines.len()).map(|_| Ok(Vec::new())).collect())
        .collect();
    let done: Vec<_> = calls.collect().await;
    for (q, e, outcome, change) in done {
        if outcome.is_err() {
            spend.failures += 1;
        }
        if let Some(change) = change {
            spend.changes.push((engines[e].name().to_string(), change));
        }
        grid[q][e] = outcome;
    }
    (grid, spend)
}

/// Searches `queries` on `engines` for round `round` and merges the results: per
/// sub-query, the engines' lists are interleaved by rank (their scores are not
/// comparable), and a document already seen in this search — by URL or content — is
/// dropped, so it is credited to the first sub-query and engine that found it.
pub(crate) async fn search_round(
    engines: &[Arc<dyn SearchEngine>],
    queries: &[String],
    round: usize,
    limits: FanoutLimits,
    seen: &mut Seen,
    breakers: &Breakers,
    max_calls: u64,
) -> RoundResults {
    let (grid, spend) = search_grid(engines, queries, round, limits, breakers, max_calls).await;
    let mut out = RoundResults {
        calls: spend.calls,
        failures: spend.failures,
        cut: spend.cut,
        skipped: spend.skipped,
        changes: spend.changes,
        ..RoundResults::default()
    };
    for (q, row) in grid.into_iter().enumerate() {
        let mut lists = Vec::with_capacity(row.len());
        for (e, outcome) in row.into_iter().enumerate() {
            match outcome {
                Ok(docs) => lists.push((e, docs.into_iter())),
                Err(err) => out.warnings.push(WarningData {
                    engine: engines[e].name().to_string(),
                    query: queries[q].clone(),
                    message: err.to_string(),
                }),
            }
        }
        let mut docs = Vec::new();
        let mut exhausted = false;
        while !exhausted {
            exhausted = true;
            for (e, list) in lists.iter_mut() {
                let Some(doc) = list.next() else { continue };
                exhausted = false;
                if !seen.accept(&doc) {
                    continue;
                }
                docs.push(DocData {
                    title: doc.title.clone(),
                    url: doc.url.clone(),
                    snippet: doc.snippet.clone(),
                    engine: engines[*e].name().to_string(),
                    score: doc.score,
                });
                out.found.push(Found {
                    doc,
                    round,
                    query: q,
                    rank: docs.len() - 1,
                });
            }
        }
        out.results.push(QueryResults {
            query: queries[q].clone(),
            docs,
        });
    }
    out
}

/// The documents an answer is written from: breadth first — every sub-query's best
/// document (earlier rounds first), then every second best, and so on — up to `max`.
pub(crate) fn pick_sources(found: &[Found], max: usize) -> Vec<&Found> {
    let mut order: Vec<&Found> = found.iter().collect();
    order.sort_by_key(|f| (f.rank, f.round, f.query));
    order.truncate(max);
    order
}
