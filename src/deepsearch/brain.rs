//! Who plans, judges and writes: an OpenAI-compatible model when one is configured, the
//! offline kit otherwise. Both sit behind the same three calls.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use futures::stream::{self, BoxStream};
use futures::StreamExt;

use super::citations::CitationChecker;
use super::offline::{self, normalize_query, Assessment};
use super::PlanHistory;
use crate::llm::prompts::{
    answer_messages, planner_messages, reasoner_messages, CitationFilter, PlannerReply,
    ReasonerReply,
};
use crate::llm::usage::{count_prompt, count_tokens};
use crate::llm::{Delta, LlmClient, LlmError, TokenUsage, UsageReport};
use crate::search::Document;

/// The planner, reasoner and answer writer.
#[derive(Debug, Clone)]
pub enum Brain {
    /// No model: heuristic planner, coverage reasoner, extractive answers.
    Offline,
    /// Any OpenAI-compatible chat-completions server.
    Llm(LlmClient),
}

/// How the `[n]` markers of an answer map to the documents it was written from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Citing {
    /// `[n]` is `docs[map[n - 1]]` (the extractive builder numbers by first use).
    Mapped(Vec<usize>),
    /// `[n]` is `docs[n - 1]` (the model saw the documents numbered).
    Numbered,
}

/// The citation check of a model's answer, shared between its stream and the loop,
/// which reports the verdicts in `final`. Never locked across an await.
pub(crate) type Checker = Arc<Mutex<CitationChecker>>;

/// A verdict on the material found so far.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub is_answer: bool,
    /// The offline assessment, kept for its gaps even when a model decides.
    pub assessment: Assessment,
    pub rewrite_query: Option<String>,
}

/// Drops queries already searched, or repeated, after normalization.
fn fresh(queries: Vec<String>, history: &PlanHistory, max: usize) -> Vec<String> {
    let mut seen: HashSet<String> = history
        .searched
        .iter()
        .map(|q| normalize_query(q))
        .collect();
    queries
        .into_iter()
        .map(|q| q.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|q| {
            let key = normalize_query(q);
            !key.is_empty() && seen.insert(key)
        })
        .take(max)
        .collect()
}

impl Brain {
    /// Sub-queries for `round` (1-based), none already searched. Empty: nothing new.
    pub(crate) async fn plan(
        &self,
        query: &str,
        round: usize,
        history: &PlanHistory,
        max: usize,
    ) -> Result<(Vec<String>, TokenUsage), LlmError> {
        let mut spent = TokenUsage::default();
        if let Brain::Llm(client) = self {
            let (reply, usage) = client
                .chat_json_counted::<PlannerReply>(planner_messages(query, round, history, max))
                .await?;
            spent = usage;
            let planned = fresh(reply?.queries, history, max);
            if !planned.is_empty() {
                return Ok((planned, spent));
            }
            // A model that repeats itself still gets the offline planner's gap queries.
        }
        let planned = fresh(offline::plan(query, round, history, max), history, max);
        Ok((planned, spent))
    }

    /// Whether `docs` answer `query`.
    pub(crate) async fn judge(
        &self,
        query: &str,
        docs: &[Document],
    ) -> Result<(Verdict, TokenUsage), LlmError> {
        let assessment = offline::assess(query, docs);
        match self {
            Brain::Offline => Ok((
                Verdict {
                    is_answer: assessment.is_answer,
                    rewrite_query: assessment.rewrite_query.clone(),
                    assessment,
                },
                TokenUsage::default(),
            )),
            Brain::Llm(client) => {
                let (reply, usage) = client
                    .chat_json_counted::<ReasonerReply>(reasoner_messages(query, docs))
                    .await?;
                let reply = reply?;
                let rewrite = reply
                    .rewrite_query
                    .filter(|r| !r.trim().is_empty())
                    .or_else(|| assessment.rewrite_query.clone());
                Ok((
                    Verdict {
                        is_answer: reply.is_answer && !docs.is_empty(),
                        rewrite_query: rewrite,
                        assessment,
                    },
                    usage,
                ))
            }
        }
    }

    /// The answer as a stream of text pieces, how its citations map to `docs`, and for a
    /// model's answer the citation check. Model output passes through the citation
    /// filter, so no `[n]` names a missing source, then through the check, so no `[n]`
    /// names a source that does not support its sentence.
    ///
    /// `max_tokens` (a token budget's rest) caps a model's answer.
    pub(crate) fn answer(
        &self,
        query: &str,
        sub_queries: &[String],
        docs: &[Document],
        max_sentences: usize,
        no_answer: &str,
        max_tokens: Option<u64>,
    ) -> Answering {
        match self {
            Brain::Offline => {
                let answer = offline::build_answer(query, sub_queries, docs, max_sentences);
                if !answer.is_found() {
                    let text = no_answer.to_string();
                    return Answering {
                        pieces: stream::iter([Ok(text)]).boxed(),
                        citing: Citing::Mapped(Vec::new()),
                        checker: None,
                        tokens: None,
                    };
                }
                let pieces: Vec<Result<String, LlmError>> =
                    answer.pieces().map(|p| Ok(p.to_string())).collect();
                Answering {
                    pieces: stream::iter(pieces).boxed(),
                    citing: Citing::Mapped(answer.citations),
                    checker: None,
                    tokens: None,
                }
            }
            Brain::Llm(client) => {
                let client = match max_tokens {
                    Some(most) => client.with_max_tokens(most),
                    None => client.clone(),
                };
                let messages = answer_messages(query, docs);
                let tokens = AnswerTokens {
                    report: UsageReport::default(),
                    prompt: count_prompt(&messages),
                };
                let deltas = client
                    .chat_stream_reporting(messages, Some(UsageReport::clone(&tokens.report)));
                let filter = CitationFilter::new(docs.len());
                let checker: Checker = Arc::new(Mutex::new(CitationChecker::new(docs.to_vec())));
                let check = Arc::clone(&checker);
                let checked = move |text: &str, end: bool| {
                    let mut c = check.lock().unwrap_or_else(|e| e.into_inner());
                    let mut out = c.push(text);
                    if end {
                        out.push_str(&c.finish());
                    }
                    out
                };
                // The state: the model's deltas, the filter (None once ended), the check,
                // and a failure to report once the text held before it has gone out.
                let pieces = stream::unfold(
                    (deltas.boxed(), Some(filter), checked, None),
                    |(mut deltas, mut filter, checked, failed)| async move {
                        if let Some(e) = failed {
                            return Some((Err(e), (deltas, None, checked, None)));
                        }
                        loop {
                            let f = filter.as_mut()?;
                            match deltas.next().await {
                                Some(Ok(Delta::Content(text))) => {
                                    let out = checked(&f.push(&text), false);
                                    if !out.is_empty() {
                                        return Some((Ok(out), (deltas, filter, checked, None)));
                                    }
                                }
                                // Thinking and the finish reason are not part of the answer.
                                Some(Ok(Delta::Reasoning(_) | Delta::Finish(_))) => {}
                                Some(Err(e)) => {
                                    // The sentences the check still holds are sent, then
                                    // the failure; a marker cut off by it stays unsent.
                                    let rest = checked("", true);
                                    if rest.is_empty() {
                                        return Some((Err(e), (deltas, None, checked, None)));
                                    }
                                    return Some((Ok(rest), (deltas, None, checked, Some(e))));
                                }
                                None => {
                                    let rest = checked(&f.finish(), true);
                                    filter = None;
                                    if !rest.is_empty() {
                                        return Some((Ok(rest), (deltas, filter, checked, None)));
                                    }
                                }
                            }
                        }
                    },
                );
                Answering {
                    pieces: pieces.boxed(),
                    citing: Citing::Numbered,
                    checker: Some(checker),
                    tokens: Some(tokens),
                }
            }
        }
    }
}

/// A model's answer being written: its text pieces, how its citations map, its citation
/// check, and what counts its tokens.
pub(crate) struct Answering {
    pub pieces: BoxStream<'static, Result<String, LlmError>>,
    pub citing: Citing,
    pub checker: Option<Checker>,
    pub tokens: Option<AnswerTokens>,
}

/// The tokens of a model's streamed answer: the server's report when it sent one, else
/// the prompt and the answer's text counted.
pub(crate) struct AnswerTokens {
    report: UsageReport,
    prompt: u64,
}

impl AnswerTokens {
    pub fn spent(&self, answer: &str) -> TokenUsage {
        let reported = *self.report.lock().unwrap_or_else(|e| e.into_inner());
        reported.unwrap_or(TokenUsage {
            prompt: self.prompt,
            completion: count_tokens(answer),
        })
    }
}

/// Document indexes cited in `text`, by citation number, for [`Citing::Numbered`]:
/// every `[n]` or `[n, m]` whose numbers are within `1..=n_docs`.
pub(crate) fn cited_numbers(text: &str, n_docs: usize) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find(['[', '【']) {
        let after = &rest[open + rest[open..].chars().next().map_or(1, char::len_utf8)..];
        let Some(close) = after.find([']', '】']) else {
            break;
        };
        let inner = &after[..close];
        if !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
        {
            out.extend(
                inner
                    .split(',')
                    .filter_map(|n| n.trim().parse::<usize>().ok())
                    .filter(|n| (1..=n_docs).contains(n)),
            );
        }
        rest = &after[close..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cited_numbers_only_in_range() {
        let got = cited_numbers("A [1]. B [2, 9]. C【3】. D [x]. [4", 3);
        assert_eq!(got.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn fresh_drops_searched_and_repeats() {
        let mut h = PlanHistory::new();
        h.record(["Rust async"], Vec::new());
        let got = fresh(
            vec![
                "rust, ASYNC?".into(),
                "tokio  runtime".into(),
                "Tokio runtime".into(),
                "  ".into(),
                "c".into(),
            ],
            &h,
            5,
        );
        assert_eq!(got, ["tokio runtime", "c"]);
    }
}
