//! What a caller may choose per search: rounds, which messages to stream and how answer
//! pieces are batched, the language of human-readable lines, and the loop's limits.

use std::time::Duration;

use serde::Deserialize;

use super::breaker::BreakerSettings;
use super::budget::Budget;
use super::DeepSearchError;

/// Rounds allowed per search.
pub const MAX_LOOP_RANGE: std::ops::RangeInclusive<usize> = 1..=10;
/// Longest query accepted, in characters: beyond this it is a pasted document, not a question.
pub const MAX_QUERY_CHARS: usize = 4096;

/// Which messages reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// Everything.
    #[default]
    All,
    /// Everything but the `answer` pieces.
    Intermediate,
    /// `status` and `final` only.
    Final,
    /// The `final` message alone: a non-streaming caller wants the result, not the story.
    Result,
}

impl Filter {
    /// True when messages of type `kind` are sent under this filter.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::Filter;
    /// assert!(Filter::Final.passes("final") && !Filter::Final.passes("plan"));
    /// assert!(!Filter::Intermediate.passes("answer") && Filter::Intermediate.passes("warning"));
    /// ```
    pub fn passes(self, kind: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Intermediate => kind != "answer",
            // An error ends the stream; hiding it would leave the client guessing.
            Filter::Final => matches!(kind, "status" | "final" | "error"),
            Filter::Result => matches!(kind, "final" | "error"),
        }
    }
}

/// How answer pieces are grouped into `answer` messages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Batching {
    /// One message per piece, as it is produced.
    #[default]
    General,
    /// One message every `n` pieces (tokens).
    Tokens(usize),
    /// One message per interval, carrying everything produced in it.
    Every(Duration),
}

/// The request's `stream_mode`: a filter name, or the object form that sets batching.
///
/// ```
/// use deepsearch_stream::deepsearch::{Batching, Filter, StreamMode};
/// let m = StreamMode::parse_json(r#""intermediate""#).unwrap();
/// assert_eq!(m.filter, Filter::Intermediate);
/// let m = StreamMode::parse_json(r#"{"mode": "token", "token": 4}"#).unwrap();
/// assert_eq!((m.filter, m.batching), (Filter::All, Batching::Tokens(4)));
/// assert!(StreamMode::parse_json(r#""everything""#).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamMode {
    pub filter: Filter,
    pub batching: Batching,
}

/// Default batch size of `{"mode": "token"}` without `token`.
pub const DEFAULT_BATCH_TOKENS: usize = 5;
/// Default interval of `{"mode": "time"}` without `time`, in seconds.
pub const DEFAULT_BATCH_SECONDS: f64 = 5.0;

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMode {
    Name(String),
    Object(RawModeObject),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModeObject {
    mode: Option<String>,
    token: Option<f64>,
    time: Option<f64>,
}

fn invalid(reason: impl Into<String>) -> DeepSearchError {
    DeepSearchError::InvalidRequest {
        field: "stream_mode",
        reason: reason.into(),
    }
}

impl StreamMode {
    /// `"all"`, `"intermediate"` or `"final"`.
    pub fn from_name(name: &str) -> Result<Self, DeepSearchError> {
        let filter = match name {
            "all" => Filter::All,
            "intermediate" => Filter::Intermediate,
            "final" => Filter::Final,
            other => {
                return Err(invalid(format!(
                    "expected \"all\", \"intermediate\", \"final\" or an object \
                     {{\"mode\": \"general\"|\"token\"|\"time\"}}, got {other:?}"
                )))
            }
        };
        Ok(StreamMode {
            filter,
            batching: Batching::General,
        })
    }

    /// The object form: `mode` is `"general"`, `"token"` (every `token` pieces) or
    /// `"time"` (every `time` seconds). Every message type is sent.
    pub fn from_object(
        mode: Option<&str>,
        token: Option<f64>,
        time: Option<f64>,
    ) -> Result<Self, DeepSearchError> {
        let batching = match mode.unwrap_or("general") {
            "general" => Batching::General,
            "token" => {
                let n = token.unwrap_or(DEFAULT_BATCH_TOKENS as f64);
                if !(n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= 1e6) {
                    return Err(invalid(format!(
                        "token must be a whole number from 1 to 1000000, got {n}"
                    )));
                }
                Batching::Tokens(n as usize)
            }
            "time" => {
                let s = time.unwrap_or(DEFAULT_BATCH_SECONDS);
                if !(s.is_finite() && s > 0.0 && s <= 3600.0) {
                    return Err(invalid(format!(
                        "time must be a number of seconds above 0 and at most 3600, got {s}"
                    )));
                }
                Batching::Every(Duration::from_secs_f64(s))
            }
            other => {
                return Err(invalid(format!(
                    "mode must be \"general\", \"token\" or \"time\", got {other:?}"
                )))
            }
        };
        Ok(StreamMode {
            filter: Filter::All,
            batching,
        })
    }

    /// Either form, from a JSON value.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, DeepSearchError> {
        match RawMode::deserialize(value) {
            Ok(RawMode::Name(name)) => Self::from_name(&name),
            Ok(RawMode::Object(o)) => Self::from_object(o.mode.as_deref(), o.token, o.time),
            Err(_) => Err(invalid(
                "expected a string or an object with keys mode, token, time",
            )),
        }
    }

    /// Either form, from JSON text.
    pub fn parse_json(text: &str) -> Result<Self, DeepSearchError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        Self::from_value(&value)
    }
}

/// Language of the `status` and `progress` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    /// The seed's own strings (开始搜索..., 执行第N轮搜索...).
    Zh,
}

impl Locale {
    /// `"en"` or `"zh"` (region suffixes such as `zh-CN` are accepted).
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::Locale;
    /// assert_eq!(Locale::parse("zh-CN").unwrap(), Locale::Zh);
    /// assert!(Locale::parse("fr").is_err());
    /// ```
    pub fn parse(tag: &str) -> Result<Self, DeepSearchError> {
        let lang = tag.split(['-', '_']).next().unwrap_or("");
        match lang.to_ascii_lowercase().as_str() {
            "en" => Ok(Locale::En),
            "zh" => Ok(Locale::Zh),
            _ => Err(DeepSearchError::InvalidRequest {
                field: "locale",
                reason: format!("expected \"en\" or \"zh\", got {tag:?}"),
            }),
        }
    }
}

/// One search as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub query: String,
    /// Rounds at most, within [`MAX_LOOP_RANGE`].
    pub max_loop: usize,
    pub mode: StreamMode,
    /// Language of this search's status lines; `None`: the server's
    /// ([`Settings::locale`]).
    pub locale: Option<Locale>,
    /// The W3C `traceparent` of the request that asked for this search: its trace
    /// span continues that trace (see [`crate::telemetry`]).
    pub traceparent: Option<String>,
    /// What this search may spend, under the server's [`Settings::budget`].
    pub budget: Budget,
}

impl Request {
    /// A request with the defaults: 3 rounds, everything streamed, the server's locale.
    pub fn new(query: impl Into<String>) -> Self {
        Request {
            query: query.into(),
            max_loop: 3,
            mode: StreamMode::default(),
            locale: None,
            traceparent: None,
            budget: Budget::default(),
        }
    }

    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    pub fn locale(mut self, locale: Option<Locale>) -> Self {
        self.locale = locale;
        self
    }

    pub fn max_loop(mut self, max_loop: usize) -> Self {
        self.max_loop = max_loop;
        self
    }

    pub fn mode(mut self, mode: StreamMode) -> Self {
        self.mode = mode;
        self
    }

    /// Checks the query and `max_loop`; the error names the field.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::Request;
    /// assert!(Request::new("rust").validate().is_ok());
    /// let err = Request::new("  ").validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid query: must not be empty");
    /// assert!(Request::new("rust").max_loop(11).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), DeepSearchError> {
        let bad = |field, reason: String| Err(DeepSearchError::InvalidRequest { field, reason });
        if self.query.trim().is_empty() {
            return bad("query", "must not be empty".into());
        }
        let chars = self.query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return bad(
                "query",
                format!("is {chars} characters long; at most {MAX_QUERY_CHARS} are allowed"),
            );
        }
        if self.query.contains('\0') {
            return bad("query", "must not contain NUL characters".into());
        }
        if !MAX_LOOP_RANGE.contains(&self.max_loop) {
            return bad(
                "max_loop",
                format!(
                    "must be from {} to {}, got {}",
                    MAX_LOOP_RANGE.start(),
                    MAX_LOOP_RANGE.end(),
                    self.max_loop
                ),
            );
        }
        Ok(())
    }
}

/// Limits of the loop, fixed when a [`DeepSearch`](super::DeepSearch) is built.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Sub-queries planned per round at most.
    pub max_queries: usize,
    /// Documents asked of each engine per sub-query.
    pub docs_per_query: usize,
    /// Engine calls in flight at once, across all sub-queries.
    pub concurrency: usize,
    /// Deadline of one engine call; a slow engine becomes a `warning`.
    pub engine_timeout: Duration,
    /// Sentences in an offline (extractive) answer at most.
    pub answer_sentences: usize,
    /// Documents the answer is written from at most.
    pub max_sources: usize,
    /// Top documents whose pages are fetched with the page reader before answering
    /// (0: never fetch; snippets and engine content only).
    pub read_pages: usize,
    pub locale: Locale,
    /// Every search's budget when its request sets none, and the most a request may ask
    /// for (`--max-search-calls`, `--max-llm-tokens`, `--search-deadline`).
    pub budget: Budget,
    /// When an engine's circuit opens, shared by every search of the service.
    pub breaker: BreakerSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_queries: 4,
            docs_per_query: 5,
            concurrency: 8,
            engine_timeout: Duration::from_secs(10),
            answer_sentences: 6,
            max_sources: 12,
            read_pages: 0,
            locale: Locale::En,
            budget: Budget::default(),
            breaker: BreakerSettings::default(),
        }
    }
}

impl Settings {
    /// Checks every limit; the error names the setting.
    pub fn validate(&self) -> Result<(), DeepSearchError> {
        let check = |ok: bool, field: &'static str, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(DeepSearchError::InvalidSetting {
                    field,
                    reason: reason.to_string(),
                })
            }
        };
        check(
            (1..=20).contains(&self.max_queries),
            "max_queries",
            "must be from 1 to 20",
        )?;
        check(
            (1..=50).contains(&self.docs_per_query),
            "docs_per_query",
            "must be from 1 to 50",
        )?;
        check(
            (1..=256).contains(&self.concurrency),
            "concurrency",
            "must be from 1 to 256",
        )?;
        check(
            !self.engine_timeout.is_zero(),
            "engine_timeout",
            "must be above zero",
        )?;
        check(
            (1..=50).contains(&self.answer_sentences),
            "answer_sentences",
            "must be from 1 to 50",
        )?;
        check(
            (1..=100).contains(&self.max_sources),
            "max_sources",
            "must be from 1 to 100",
        )?;
        check(self.read_pages <= 20, "read_pages", "must be from 0 to 20")?;
        check(
            !self.breaker.cooldown.is_zero(),
            "breaker_cooldown",
            "must be above zero",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_mode_forms() {
        let m = StreamMode::parse_json(r#""final""#).unwrap();
        assert_eq!(m.filter, Filter::Final);
        let m = StreamMode::parse_json(r#"{"mode": "time", "time": 0.5}"#).unwrap();
        assert_eq!(m.batching, Batching::Every(Duration::from_millis(500)));
        let m = StreamMode::parse_json(r#"{"mode": "token"}"#).unwrap();
        assert_eq!(m.batching, Batching::Tokens(DEFAULT_BATCH_TOKENS));
        let m = StreamMode::parse_json("{}").unwrap();
        assert_eq!(m, StreamMode::default());
        for bad in [
            r#"{"mode": "token", "token": 0}"#,
            r#"{"mode": "token", "token": 1.5}"#,
            r#"{"mode": "time", "time": -1}"#,
            r#"{"mode": "burst"}"#,
            r#"{"mode": "general", "extra": 1}"#,
            "3",
            r#""ALL""#,
        ] {
            let err = StreamMode::parse_json(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid stream_mode"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn filter_table() {
        let kinds = [
            "status",
            "progress",
            "plan",
            "intermediate",
            "answer",
            "warning",
            "final",
            "error",
        ];
        let passing = |f: Filter| kinds.iter().filter(|k| f.passes(k)).count();
        assert_eq!(passing(Filter::All), 8);
        assert_eq!(passing(Filter::Intermediate), 7);
        assert_eq!(passing(Filter::Final), 3);
        assert_eq!(passing(Filter::Result), 2);
    }

    #[test]
    fn request_limits() {
        assert!(Request::new("x").max_loop(0).validate().is_err());
        assert!(Request::new("x").max_loop(10).validate().is_ok());
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        let err = Request::new(long).validate().unwrap_err();
        assert!(err.to_string().contains("at most 4096"), "{err}");
        assert!(Request::new("a\0b").validate().is_err());
    }

    #[test]
    fn settings_limits() {
        assert!(Settings::default().validate().is_ok());
        let s = Settings {
            concurrency: 0,
            ..Settings::default()
        };
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "invalid setting concurrency: must be from 1 to 256"
        );
    }
}
