//! What one search may spend (engine calls, model tokens, wall time) and what it spent.
//!
//! A budget never makes a search fail: when one runs out the loop stops planning and
//! searching, says so in a `warning` naming the budget, and answers from what it found.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::DeepSearchError;

/// Limits of one search; `None` is no limit.
///
/// ```
/// use std::time::Duration;
/// use deepsearch_stream::deepsearch::Budget;
/// let b = Budget::parse_json(r#"{"max_search_calls": 4, "deadline_s": 2.5}"#).unwrap();
/// assert_eq!(b.max_search_calls, Some(4));
/// assert_eq!(b.deadline, Some(Duration::from_millis(2500)));
/// assert!(Budget::parse_json(r#"{"max_search_calls": 0}"#).is_err());
/// assert!(Budget::parse_json(r#"{"max_calls": 4}"#).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    /// Engine calls (one sub-query on one engine), at least 1.
    pub max_search_calls: Option<u64>,
    /// Model tokens, prompt and completion together, at least 1.
    pub max_llm_tokens: Option<u64>,
    /// Wall time from the search's start; the answer is written when it has passed.
    pub deadline: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_search_calls: Option<f64>,
    max_llm_tokens: Option<f64>,
    deadline_s: Option<f64>,
}

/// Largest count accepted (2^53: every whole number up to it is exact in JSON's doubles).
const MAX_COUNT: f64 = 9_007_199_254_740_992.0;
/// Longest deadline accepted: a day.
const MAX_DEADLINE_S: f64 = 86_400.0;

fn invalid(reason: impl Into<String>) -> DeepSearchError {
    DeepSearchError::InvalidRequest {
        field: "budget",
        reason: reason.into(),
    }
}

fn count(name: &str, value: Option<f64>) -> Result<Option<u64>, DeepSearchError> {
    match value {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= MAX_COUNT => {
            Ok(Some(n as u64))
        }
        Some(n) => Err(invalid(format!(
            "{name} must be a whole number of at least 1, got {n}"
        ))),
    }
}

impl Budget {
    /// The object form `{max_search_calls, max_llm_tokens, deadline_s}`, every key
    /// optional.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, DeepSearchError> {
        let raw = RawBudget::deserialize(value).map_err(|_| {
            invalid(
                "expected an object with keys max_search_calls, max_llm_tokens and deadline_s \
                 (numbers)",
            )
        })?;
        let deadline = match raw.deadline_s {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s <= MAX_DEADLINE_S => {
                Some(Duration::from_secs_f64(s))
            }
            Some(s) => {
                return Err(invalid(format!(
                    "deadline_s must be a number of seconds above 0 and at most \
                     {MAX_DEADLINE_S}, got {s}"
                )))
            }
        };
        Ok(Budget {
            max_search_calls: count("max_search_calls", raw.max_search_calls)?,
            max_llm_tokens: count("max_llm_tokens", raw.max_llm_tokens)?,
            deadline,
        })
    }

    /// [`Budget::from_value`] from JSON text.
    pub fn parse_json(text: &str) -> Result<Self, DeepSearchError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Refuses a request budget above the server's `ceiling` (its `--max-search-calls`,
    /// `--max-llm-tokens`, `--search-deadline`), naming the limit: a client asking for
    /// more than the server allows learns it instead of getting less in silence.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::Budget;
    /// let ceiling = Budget { max_search_calls: Some(10), ..Budget::default() };
    /// let asked = Budget { max_search_calls: Some(11), ..Budget::default() };
    /// assert!(asked.check_within(&ceiling).is_err());
    /// assert!(Budget::default().check_within(&ceiling).is_ok());
    /// ```
    pub fn check_within(&self, ceiling: &Budget) -> Result<(), DeepSearchError> {
        let above = |asked: Option<u64>, most: Option<u64>| matches!((asked, most), (Some(a), Some(m)) if a > m);
        if above(self.max_search_calls, ceiling.max_search_calls) {
            return Err(invalid(format!(
                "max_search_calls may be at most {} on this server",
                ceiling.max_search_calls.unwrap_or_default()
            )));
        }
        if above(self.max_llm_tokens, ceiling.max_llm_tokens) {
            return Err(invalid(format!(
                "max_llm_tokens may be at most {} on this server",
                ceiling.max_llm_tokens.unwrap_or_default()
            )));
        }
        if let (Some(a), Some(m)) = (self.deadline, ceiling.deadline) {
            if a > m {
                return Err(invalid(format!(
                    "deadline_s may be at most {} on this server",
                    m.as_secs_f64()
                )));
            }
        }
        Ok(())
    }

    /// Each limit of `self`, else the server's `default`; the smaller when both are set.
    pub fn under(&self, default: &Budget) -> Budget {
        fn least<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Budget {
            max_search_calls: least(self.max_search_calls, default.max_search_calls),
            max_llm_tokens: least(self.max_llm_tokens, default.max_llm_tokens),
            deadline: least(self.deadline, default.deadline),
        }
    }
}

/// What a search spent: `final.data.usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    /// Engine calls made (skipped ones, by a budget or an open circuit, not counted).
    pub search_calls: u64,
    /// Engine calls that failed or timed out.
    pub engine_failures: u64,
    /// Model tokens: from the model's usage reports when it sends them, else counted.
    pub llm_prompt_tokens: u64,
    pub llm_completion_tokens: u64,
    pub elapsed_ms: u64,
}

/// A budget that ran out, named as in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spent {
    SearchCalls,
    LlmTokens,
    Deadline,
}

impl Spent {
    pub fn name(self) -> &'static str {
        match self {
            Spent::SearchCalls => "max_search_calls",
            Spent::LlmTokens => "max_llm_tokens",
            Spent::Deadline => "deadline_s",
        }
    }
}

/// A search's budget and spending so far.
#[derive(Debug)]
pub(crate) struct Meter {
    pub budget: Budget,
    started: Instant,
    pub usage: Usage,
}

impl Meter {
    pub fn new(budget: Budget, started: Instant) -> Self {
        Meter {
            budget,
            started,
            usage: Usage::default(),
        }
    }

    /// Engine calls still allowed (`u64::MAX`: no limit).
    pub fn calls_left(&self) -> u64 {
        self.budget
            .max_search_calls
            .map_or(u64::MAX, |m| m.saturating_sub(self.usage.search_calls))
    }

    /// Model tokens still allowed, `None` when unlimited.
    pub fn tokens_left(&self) -> Option<u64> {
        self.budget.max_llm_tokens.map(|m| {
            m.saturating_sub(self.usage.llm_prompt_tokens + self.usage.llm_completion_tokens)
        })
    }

    /// Time left before the deadline, `None` when there is none.
    pub fn time_left(&self) -> Option<Duration> {
        self.budget
            .deadline
            .map(|d| d.saturating_sub(self.started.elapsed()))
    }

    /// The first budget that has run out, if any.
    pub fn spent(&self) -> Option<Spent> {
        if self.time_left().is_some_and(|t| t.is_zero()) {
            Some(Spent::Deadline)
        } else if self.calls_left() == 0 {
            Some(Spent::SearchCalls)
        } else if self.tokens_left() == Some(0) {
            Some(Spent::LlmTokens)
        } else {
            None
        }
    }

    pub fn add_tokens(&mut self, prompt: u64, completion: u64) {
        self.usage.llm_prompt_tokens += prompt;
        self.usage.llm_completion_tokens += completion;
    }

    /// The usage with the elapsed time filled in.
    pub fn finish(&self) -> Usage {
        Usage {
            elapsed_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..self.usage
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_budgets_name_the_limit() {
        for (bad, names) in [
            (r#"{"max_search_calls": 1.5}"#, "max_search_calls"),
            (r#"{"max_llm_tokens": -3}"#, "max_llm_tokens"),
            (r#"{"deadline_s": 0}"#, "deadline_s"),
            (r#"{"deadline_s": "soon"}"#, "deadline_s"),
            (r#"[1]"#, "max_search_calls"),
        ] {
            let err = Budget::parse_json(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid budget: "), "{bad}: {err}");
            assert!(err.contains(names), "{bad}: {err}");
        }
        assert_eq!(Budget::parse_json("{}").unwrap(), Budget::default());
    }

    #[test]
    fn a_request_budget_within_the_servers() {
        let server = Budget {
            max_search_calls: Some(8),
            max_llm_tokens: None,
            deadline: Some(Duration::from_secs(30)),
        };
        let asked = Budget {
            max_search_calls: Some(2),
            max_llm_tokens: Some(100),
            deadline: None,
        };
        assert!(asked.check_within(&server).is_ok());
        assert_eq!(
            asked.under(&server),
            Budget {
                max_search_calls: Some(2),
                max_llm_tokens: Some(100),
                deadline: Some(Duration::from_secs(30)),
            }
        );
        let greedy = Budget {
            deadline: Some(Duration::from_secs(31)),
            ..Budget::default()
        };
        let err = greedy.check_within(&server).unwrap_err().to_string();
        assert!(err.contains("deadline_s may be at most 30"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_meter_names_what_ran_out() {
        let mut m = Meter::new(
            Budget {
                max_search_calls: Some(2),
                max_llm_tokens: Some(10),
                deadline: Some(Duration::from_secs(5)),
            },
            Instant::now(),
        );
        assert_eq!(m.spent(), None);
        m.add_tokens(6, 4);
        assert_eq!(m.spent(), Some(Spent::LlmTokens));
        m.usage.search_calls = 2;
        assert_eq!(m.spent(), Some(Spent::SearchCalls));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(m.spent(), Some(Spent::Deadline));
        assert_eq!(m.finish().elapsed_ms, 6000);
    }
}
