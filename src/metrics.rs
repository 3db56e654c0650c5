//! Process-wide counters for `/metrics`, in the Prometheus text format. Both servers
//! render the same registry, so their metrics cannot drift apart.

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::stream::StreamStats;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 5 ms to ~80 s: engine calls and whole searches both fit.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    streams_open: Gauge,
    streams: Counter,
    messages: Counter,
    bytes: Counter,
    heartbeats: Counter,
    blocked: Counter<f64, AtomicU64>,
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    engine_calls: Family<Labels, Counter>,
    engine_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    replay_logs: Gauge,
    replay_bytes: Gauge,
    replay_evictions: Counter,
    replay_trimmed: Counter,
    replay_store_errors: Counter,
    resumes: Family<Labels, Counter>,
    searches: Counter,
    search_calls: Counter,
    engine_failures: Counter,
    llm_prompt_tokens: Counter,
    llm_completion_tokens: Counter,
    search_seconds: Counter<f64, AtomicU64>,
    budgets_spent: Family<Labels, Counter>,
    circuits: Family<Labels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("deepsearch");
        let m = Metrics {
            streams_open: Gauge::default(),
            streams: Counter::default(),
            messages: Counter::default(),
            bytes: Counter::default(),
            heartbeats: Counter::default(),
            blocked: Counter::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            engine_calls: Family::default(),
            engine_seconds: Family::new_with_constructor(latency_histogram),
            replay_logs: Gauge::default(),
            replay_bytes: Gauge::default(),
            replay_evictions: Counter::default(),
            replay_trimmed: Counter::default(),
            replay_store_errors: Counter::default(),
            resumes: Family::default(),
            searches: Counter::default(),
            search_calls: Counter::default(),
            engine_failures: Counter::default(),
            llm_prompt_tokens: Counter::default(),
            llm_completion_tokens: Counter::default(),
            search_seconds: Counter::default(),
            budgets_spent: Family::default(),
            circuits: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "streams_open",
            "Streams being served now",
            m.streams_open.clone(),
        );
        registry.register("streams", "Streams opened", m.streams.clone());
        registry.register(
            "messages_sent",
            "Messages handed to clients",
            m.messages.clone(),
        );
        registry.register("bytes_sent", "SSE bytes handed to clients", m.bytes.clone());
        registry.register(
            "heartbeats_sent",
            "Heartbeats sent on idle streams",
            m.heartbeats.clone(),
        );
        registry.register(
            "backpressure_blocked_seconds",
            "Time producers waited on full stream buffers",
            m.blocked.clone(),
        );
        registry.register(
            "requests",
            "Requests answered, by route and status",
            m.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of its response, by route",
            m.request_seconds.clone(),
        );
        registry.register(
            "engine_calls",
            "Search engine calls, by engine and outcome",
            m.engine_calls.clone(),
        );
        registry.register(
            "engine_latency_seconds",
            "Search engine call latency, by engine",
            m.engine_seconds.clone(),
        );
        registry.register(
            "replay_logs",
            "Replay logs held (live and ended)",
            m.replay_logs.clone(),
        );
        registry.register(
            "replay_bytes",
            "Bytes held by replay logs",
            m.replay_bytes.clone(),
        );
        registry.register(
            "replay_evictions",
            "Ended replay logs evicted before their time to make room",
            m.replay_evictions.clone(),
        );
        registry.register(
            "replay_trimmed_frames",
            "Frames already delivered dropped from live replay logs to make room",
            m.replay_trimmed.clone(),
        );
        registry.register(
            "replay_store_errors",
            "Streams whose shared replay store (Redis) failed; they went on unlogged there",
            m.replay_store_errors.clone(),
        );
        registry.register(
            "resumes",
            "Reconnections with Last-Event-ID, by outcome (resumed, or the refusal's code)",
            m.resumes.clone(),
        );
        // The same counters as `final.data.usage`, summed over every search.
        registry.register(
            "searches",
            "Searches run to their answer",
            m.searches.clone(),
        );
        registry.register(
            "search_calls",
            "Engine calls made by searches (skipped ones not counted)",
            m.search_calls.clone(),
        );
        registry.register(
            "engine_failures",
            "Engine calls that failed or timed out",
            m.engine_failures.clone(),
        );
        registry.register(
            "llm_prompt_tokens",
            "Model prompt tokens (reported by the model, else counted)",
            m.llm_prompt_tokens.clone(),
        );
        registry.register(
            "llm_completion_tokens",
            "Model completion tokens (reported by the model, else counted)",
            m.llm_completion_tokens.clone(),
        );
        registry.register(
            "search_elapsed_seconds",
            "Time searches took, summed",
            m.search_seconds.clone(),
        );
        registry.register(
            "budgets_spent",
            "Searches a budget stopped, by budget",
            m.budgets_spent.clone(),
        );
        registry.register(
            "engine_circuit_changes",
            "Engine circuits opened or closed, by engine and state",
            m.circuits.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A stream started being served.
    pub fn stream_opened(&self) {
        self.streams.inc();
        self.streams_open.inc();
    }

    /// A stream ended; `stats` are its final counters.
    pub fn stream_closed(&self, stats: &StreamStats) {
        self.streams_open.dec();
        self.messages.inc_by(stats.messages_sent);
        self.bytes.inc_by(stats.bytes_sent);
        self.heartbeats.inc_by(stats.heartbeats);
        self.blocked.inc_by(stats.blocked.as_secs_f64());
    }

    /// A request was answered with `status` after `elapsed` (for a stream: when it ended).
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        let route = vec![("route", route.to_string())];
        let mut with_status = route.clone();
        with_status.push(("status", status.to_string()));
        self.requests.get_or_create(&with_status).inc();
        self.request_seconds
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
    }

    /// One search engine call finished.
    pub fn engine_call(&self, engine: &str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.engine_calls
            .get_or_create(&vec![
                ("engine", engine.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.engine_seconds
            .get_or_create(&vec![("engine", engine.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    /// A search ended with its answer, having spent `usage`.
    pub fn search_usage(&self, usage: &crate::deepsearch::Usage) {
        self.searches.inc();
        self.search_calls.inc_by(usage.search_calls);
        self.engine_failures.inc_by(usage.engine_failures);
        self.llm_prompt_tokens.inc_by(usage.llm_prompt_tokens);
        self.llm_completion_tokens
            .inc_by(usage.llm_completion_tokens);
        self.search_seconds.inc_by(usage.elapsed_ms as f64 / 1000.0);
    }

    /// A budget (`max_search_calls`, `max_llm_tokens`, `deadline_s`) stopped a search.
    pub fn budget_spent(&self, budget: &str) {
        self.budgets_spent
            .get_or_create(&vec![("budget", budget.to_string())])
            .inc();
    }

    /// An engine's circuit opened or closed.
    pub fn circuit(&self, engine: &str, opened: bool) {
        let state = if opened { "open" } else { "closed" };
        self.circuits
            .get_or_create(&vec![
                ("engine", engine.to_string()),
                ("state", state.to_string()),
            ])
            .inc();
    }

    /// A replay log was created.
    pub fn replay_log_added(&self) {
        self.replay_logs.inc();
    }

    /// A replay log holding `bytes` was dropped (expired, evicted or replaced).
    pub fn replay_log_removed(&self, bytes: usize) {
        self.replay_logs.dec();
        self.replay_bytes_freed(bytes);
    }

    /// An ended replay log was evicted before its time, for room.
    pub fn replay_log_evicted(&self) {
        self.replay_evictions.inc();
    }

    /// A delivered frame was dropped from a live replay log, for room.
    pub fn replay_frame_trimmed(&self) {
        self.replay_trimmed.inc();
    }

    pub fn replay_bytes_added(&self, bytes: usize) {
        self.replay_bytes
            .inc_by(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn replay_bytes_freed(&self, bytes: usize) {
        self.replay_bytes
            .dec_by(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The shared replay store failed for a stream.
    pub fn replay_store_error(&self) {
        self.replay_store_errors.inc();
    }

    /// A client came back with `Last-Event-ID`: `resumed`, or the code of the refusal
    /// (`expired`, `resume_unavailable`, ...).
    pub fn resume(&self, outcome: &str) {
        self.resumes
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// The whole registry in the Prometheus text format (`text/plain; version=0.0.4`).
    ///
    /// ```
    /// let text = deepsearch_stream::metrics::global().render();
    /// assert!(text.contains("# TYPE deepsearch_streams_open gauge"));
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text() {
        let m = Metrics::new();
        m.stream_opened();
        m.engine_call("local", true, Duration::from_millis(3));
        m.engine_call("searxng", false, Duration::from_millis(30));
        m.request("/deepsearch", 200, Duration::from_millis(40));
        let text = m.render();
        assert!(text.contains("deepsearch_streams_open 1"), "{text}");
        assert!(text.contains("deepsearch_streams_total 1"), "{text}");
        assert!(
            text.contains(r#"deepsearch_engine_calls_total{engine="searxng",outcome="error"} 1"#)
        );
        assert!(text.contains(r#"deepsearch_requests_total{route="/deepsearch",status="200"} 1"#));
        assert!(text.contains("deepsearch_engine_latency_seconds_bucket"));
        m.stream_closed(&StreamStats::default());
        assert!(m.render().contains("deepsearch_streams_open 0"));
        m.search_usage(&crate::deepsearch::Usage {
            search_calls: 4,
            engine_failures: 1,
            llm_prompt_tokens: 120,
            llm_completion_tokens: 30,
            elapsed_ms: 1500,
        });
        m.budget_spent("max_search_calls");
        m.circuit("searxng", true);
        let text = m.render();
        for line in [
            "deepsearch_searches_total 1",
            "deepsearch_search_calls_total 4",
            "deepsearch_engine_failures_total 1",
            "deepsearch_llm_prompt_tokens_total 120",
            "deepsearch_llm_completion_tokens_total 30",
            "deepsearch_search_elapsed_seconds_total 1.5",
            r#"deepsearch_budgets_spent_total{budget="max_search_calls"} 1"#,
            r#"deepsearch_engine_circuit_changes_total{engine="searxng",state="open"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
