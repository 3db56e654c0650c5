//! The one table of operator settings: each row is a flag of both CLIs, its
//! `DEEPSEARCH_*` variable, its default and its help line. The faces build their
//! argument parsers from [`SETTINGS`]; [`super::ServiceConfig`] parses the values.

/// What a setting's value is, for the parsers and the help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    /// A whole number, at least 0.
    Int,
    /// Whole or fractional seconds.
    Seconds,
    /// A switch: given (or `true` in the variable) or not.
    Bool,
    /// Comma-separated.
    List,
    /// Never printed.
    Secret,
    /// Never printed; the flag may be repeated (its variable holds one).
    Secrets,
    Path,
}

impl Kind {
    /// The name the Python face reads (`config_table()`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Int => "int",
            Kind::Seconds => "seconds",
            Kind::Bool => "bool",
            Kind::List => "list",
            Kind::Secret => "secret",
            Kind::Secrets => "secrets",
            Kind::Path => "path",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The field name, also the Python attribute and `dest`.
    pub key: &'static str,
    /// The long flag without its dashes.
    pub flag: &'static str,
    pub env: &'static str,
    /// The default as it would be written on the command line; `""`: none.
    pub default: &'static str,
    /// One line, ending with a period.
    pub help: &'static str,
    pub kind: Kind,
}

impl Setting {
    /// The help line both CLIs print: the description, the default and the variable.
    pub fn help_line(&self) -> String {
        let default = if self.default.is_empty() {
            "none"
        } else {
            self.default
        };
        format!("{} [default: {default}] [env: {}]", self.help, self.env)
    }

    /// The setting called `key`.
    pub fn find(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }
}

const fn row(
    key: &'static str,
    flag: &'static str,
    env: &'static str,
    default: &'static str,
    kind: Kind,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        flag,
        env,
        default,
        help,
        kind,
    }
}

/// Every setting, in the order `--help` lists them.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    row("host", "host", "DEEPSEARCH_HOST", "127.0.0.1", Kind::String,
        "Address to listen on."),
    row("port", "port", "DEEPSEARCH_PORT", "8000", Kind::Int,
        "Port to listen on; 0 picks a free one (the \"listening\" line shows which)."),
    row("corpus", "corpus", "DEEPSEARCH_CORPUS_DIR", "", Kind::Path,
        "Corpus folder of the local engine; none: the Python documentation, exported under the cache folder."),
    row("cache_dir", "cache-dir", "DEEPSEARCH_CACHE_DIR", "", Kind::Path,
        "Index cache folder; none: ~/.cache/deepsearch-stream (or $XDG_CACHE_HOME)."),
    row("engines", "engines", "DEEPSEARCH_ENGINES", "local", Kind::List,
        "Search engines, comma-separated: local, searxng, tavily, brave, serper, jina."),
    row("llm_base_url", "llm-base-url", "DEEPSEARCH_LLM_BASE_URL", "", Kind::String,
        "OpenAI-compatible API root of the model server; none: OPENAI_BASE_URL."),
    row("llm_model", "llm-model", "DEEPSEARCH_LLM_MODEL", "", Kind::String,
        "Model name; none: offline (extractive answers)."),
    row("llm_api_key", "llm-api-key", "DEEPSEARCH_LLM_API_KEY", "", Kind::Secret,
        "API key of the model server (never printed); none: OPENAI_API_KEY."),
    row("locale", "locale", "DEEPSEARCH_LOCALE", "en", Kind::String,
        "Language of the status lines: en or zh."),
    row("max_streams", "max-streams", "DEEPSEARCH_MAX_STREAMS", "1000", Kind::Int,
        "Searches in progress at once; beyond it, 503 with Retry-After."),
    row("max_body_bytes", "max-body-bytes", "DEEPSEARCH_MAX_BODY_BYTES", "65536", Kind::Int,
        "Largest request body accepted, in bytes."),
    row("heartbeat", "heartbeat", "DEEPSEARCH_HEARTBEAT", "10", Kind::Seconds,
        "Seconds of silence after which a stream sends a heartbeat; 0 disables them."),
    row("stream_timeout", "stream-timeout", "DEEPSEARCH_STREAM_TIMEOUT", "3600", Kind::Seconds,
        "Longest life of a stream, in seconds; 0 means no limit."),
    row("shutdown_timeout", "shutdown-timeout", "DEEPSEARCH_SHUTDOWN_TIMEOUT", "10", Kind::Seconds,
        "Seconds to wait for open streams to finish after SIGTERM or Ctrl-C."),
    row("header_timeout", "header-timeout", "DEEPSEARCH_HEADER_TIMEOUT", "10", Kind::Seconds,
        "Seconds a request head may take to arrive, and an idle keep-alive connection may stay open (above 0)."),
    row("body_timeout", "body-timeout", "DEEPSEARCH_BODY_TIMEOUT", "30", Kind::Seconds,
        "Seconds a request body may take to arrive; then 408 and the connection is closed (above 0)."),
    row("max_connections", "max-connections", "DEEPSEARCH_MAX_CONNECTIONS", "4096", Kind::Int,
        "Open connections at most (keep it under the file descriptor limit); past it, 503 and close."),
    row("upstream", "upstream", "DEEPSEARCH_UPSTREAM", "", Kind::String,
        "Relay every search to this deepsearch service (an http(s):// base URL) instead of running it here."),
    row("resume_linger", "resume-linger", "DEEPSEARCH_RESUME_LINGER", "60", Kind::Seconds,
        "Seconds a search goes on after its client left, waiting for a Last-Event-ID resume; 0 cancels at once."),
    row("replay_ttl", "replay-ttl", "DEEPSEARCH_REPLAY_TTL", "300", Kind::Seconds,
        "Seconds a stream's replay log is kept after the stream ended."),
    row("replay_max_bytes", "replay-max-bytes", "DEEPSEARCH_REPLAY_MAX_BYTES", "268435456", Kind::Int,
        "Bytes all replay logs together may hold (ended logs are evicted oldest first)."),
    row("replay_max_stream_bytes", "replay-max-stream-bytes", "DEEPSEARCH_REPLAY_MAX_STREAM_BYTES", "16777216", Kind::Int,
        "Bytes one stream's replay log may hold."),
    row("retry_ms", "retry-ms", "DEEPSEARCH_RETRY_MS", "3000", Kind::Int,
        "Milliseconds a client waits before reconnecting after a drop, sent as retry: at the start of every stream; 0: none."),
    row("redis_url", "redis", "DEEPSEARCH_REDIS_URL", "", Kind::Secret,
        "Keep replay logs in Redis Streams at this URL (redis://host:port/db), shared by every instance; none: in memory."),
    row("bench_routes", "bench-routes", "DEEPSEARCH_BENCH_ROUTES", "false", Kind::Bool,
        "Serve the bench-only routes of bench/CONTRACT.md."),
    row("api_key", "api-key", "DEEPSEARCH_API_KEY", "", Kind::Secrets,
        "Require 'Authorization: Bearer <key>' on every route but /healthz and the page at / (never printed); repeat it for several keys: each stream resumes only under the key that started it."),
    row("api_key_file", "api-key-file", "DEEPSEARCH_API_KEY_FILE", "", Kind::Path,
        "A file of API keys, one per line (blank lines and # comments skipped), valid besides any --api-key."),
    row("cors_origins", "cors-origins", "DEEPSEARCH_CORS_ORIGINS", "", Kind::List,
        "Origins allowed to call from a browser, comma-separated, or *; none: no CORS headers at all."),
    row("max_search_calls", "max-search-calls", "DEEPSEARCH_MAX_SEARCH_CALLS", "", Kind::Int,
        "Engine calls one search may make: the budget of a request that sets none, and the most its budget.max_search_calls may ask for; none: no limit."),
    row("max_llm_tokens", "max-llm-tokens", "DEEPSEARCH_MAX_LLM_TOKENS", "", Kind::Int,
        "Model tokens one search may spend (prompt and completion), as --max-search-calls."),
    row("search_deadline", "search-deadline", "DEEPSEARCH_SEARCH_DEADLINE", "", Kind::Seconds,
        "Seconds one search may search before it answers from what it found, as --max-search-calls."),
    row("breaker_cooldown", "breaker-cooldown", "DEEPSEARCH_BREAKER_COOLDOWN", "30", Kind::Seconds,
        "Seconds an engine that failed 3 calls in a row is skipped before it is tried again (above 0)."),
    row("log_level", "log-level", "DEEPSEARCH_LOG_LEVEL", "info", Kind::String,
        "Log level: error, warn, info, debug or trace (RUST_LOG, when set, wins on the axum server)."),
];

/// The settings a one-off `search` in the terminal takes (no server).
pub const SEARCH_SETTINGS: &[&str] = &[
    "engines",
    "corpus",
    "cache_dir",
    "llm_base_url",
    "llm_model",
    "llm_api_key",
    "locale",
];
