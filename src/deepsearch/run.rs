//! The loop itself: plan → search → reason, round after round, then the cited answer.

use futures::StreamExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::brain::{cited_numbers, Answering, Citing};
use super::breaker::Change;
use super::budget::{Meter, Spent};
use super::dedup::Seen;
use super::fanout::{pick_sources, search_round, FanoutLimits, Found};
use super::messages::{
    FinalData, IntermediateData, Message, PlanData, SourceRef, Texts, WarningData,
};
use super::options::{Locale, Request};
use super::sink::{until, Batcher, Filtered, Sink};
use super::PlanHistory;
use super::{DeepSearch, DeepSearchError};
use crate::search::Document;
use crate::telemetry;

/// Documents the offline answer builder scores sentences from at most: it ranks
/// sentences itself, so it gets more material than a model's prompt could hold.
const OFFLINE_SOURCES: usize = 60;
/// Characters of a fetched page kept as a document's content.
const PAGE_CHARS: usize = 20_000;

fn no_answer(locale: Locale) -> &'static str {
    match locale {
        Locale::En => crate::deepsearch::offline::NO_ANSWER,
        Locale::Zh => "检索到的文档中没有找到答案。",
    }
}

impl DeepSearch {
    /// Runs one search, sending its messages to `sink`, and returns the final result.
    ///
    /// Engine failures become `warning` messages and the search goes on; a model failure
    /// or a closed sink ends it with the error.
    pub async fn run<S: Sink>(
        &self,
        req: &Request,
        sink: &mut S,
    ) -> Result<FinalData, DeepSearchError> {
        req.validate()?;
        let span = telemetry::search_span(req.traceparent.as_deref(), req.max_loop);
        let result = self.run_in_span(req, sink).instrument(span.clone()).await;
        match &result {
            Ok(done) => {
                span.record("rounds", telemetry::int(done.loops));
            }
            Err(e) => telemetry::record_error(&span, e),
        }
        result
    }

    async fn run_in_span<S: Sink>(
        &self,
        req: &Request,
        sink: &mut S,
    ) -> Result<FinalData, DeepSearchError> {
        let started = Instant::now();
        let locale = req.locale.unwrap_or(self.settings.locale);
        let texts = Texts(locale);
        let mut out = Filtered {
            sink,
            filter: req.mode.filter,
        };
        let query = req.query.trim();
        out.emit(Message::Status(texts.started())).await?;

        let mut meter = Meter::new(req.budget.under(&self.settings.budget), started);
        let mut history = PlanHistory::new();
        let mut seen = Seen::default();
        let mut found: Vec<Found> = Vec::new();
        let mut rounds = 0;
        let mut told_skipped: Vec<String> = Vec::new();
        // The budget that stopped the loop, told once in a warning.
        let mut stopped: Option<Spent> = None;
        for round in 1..=req.max_loop {
            // Round 1 always searches (every budget allows one call): an answer from
            // nothing would be an empty failure.
            if let Some(spent) = meter.spent().filter(|_| round > 1) {
                stopped = Some(spent);
                break;
            }
            out.emit(Message::Progress(texts.round(round))).await?;
            let max_queries = self.settings.max_queries;
            let plan = telemetry::plan_span(round);
            let planning = self
                .brain
                .plan(query, round, &history, max_queries)
                .instrument(plan.clone());
            let (queries, tokens) = match within_deadline(&meter, planning).await {
                Some(planned) => planned.inspect_err(|e| telemetry::record_error(&plan, e))?,
                // A model too slow for the deadline still leaves round 1 the offline
                // planner's queries.
                None if round == 1 => {
                    stopped = Some(Spent::Deadline);
                    super::Brain::Offline
                        .plan(query, round, &history, max_queries)
                        .await?
                }
                None => {
                    stopped = Some(Spent::Deadline);
                    break;
                }
            };
            plan.record("queries", telemetry::int(queries.len()));
            drop(plan);
            meter.add_tokens(tokens.prompt, tokens.completion);
            if queries.is_empty() {
                out.emit(Message::Progress(texts.nothing_new(round)))
                    .await?;
                break;
            }
            rounds = round;
            out.emit(Message::Plan(PlanData {
                round,
                queries: queries.clone(),
            }))
            .await?;
            out.emit(Message::Progress(texts.searching(
                round,
                queries.len(),
                self.engines.len(),
            )))
            .await?;
            let engine_timeout = self.settings.engine_timeout;
            let left = meter.time_left().filter(|left| *left < engine_timeout);
            let limits = FanoutLimits {
                docs_per_query: self.settings.docs_per_query,
                concurrency: self.settings.concurrency,
                timeout: left.unwrap_or(engine_timeout),
                by_deadline: left.is_some(),
            };
            let results = search_round(
                &self.engines,
                &queries,
                round,
                limits,
                &mut seen,
                &self.breakers,
                meter.calls_left(),
            )
            .await;
            meter.usage.search_calls += results.calls;
            meter.usage.engine_failures += results.failures;
            for warning in results.warnings {
                tracing::warn!(engine = %warning.engine, query = %warning.query,
                    message = %warning.message, "engine call failed");
                out.emit(Message::Warning(warning)).await?;
            }
            for (engine, change) in &results.changes {
                let message = match change {
                    Change::Opened(failures) => {
                        texts.circuit_opened(*failures, self.breakers.settings().cooldown)
                    }
                    Change::Closed => texts.circuit_closed(),
                };
                crate::metrics::global().circuit(engine, matches!(change, Change::Opened(_)));
                tracing::warn!(engine = %engine, message = %message, "engine circuit");
                out.emit(Message::Warning(WarningData {
                    engine: engine.clone(),
                    query: String::new(),
                    message,
                }))
                .await?;
            }
            for engine in results.skipped {
                // Once per search: a search started while the circuit was open learns
                // why the engine gave nothing.
                if !told_skipped.contains(&engine)
                    && !results.changes.iter().any(|(e, _)| *e == engine)
                {
                    out.emit(Message::Warning(WarningData {
                        engine: engine.clone(),
                        query: String::new(),
                        message: texts.circuit_skipped(),
                    }))
                    .await?;
                    told_skipped.push(engine);
                }
            }
            if results.cut > 0 {
                out.emit(Message::Warning(budget_warning(
                    query,
                    texts.calls_cut(
                        meter.budget.max_search_calls.unwrap_or_default(),
                        results.cut,
                    ),
                )))
                .await?;
            }
            out.emit(Message::Intermediate(IntermediateData {
                round,
                results: results.results,
            }))
            .await?;
            let new_docs: Vec<Document> = results.found.iter().map(|f| f.doc.clone()).collect();
            out.emit(Message::Progress(texts.reviewing(round, new_docs.len())))
                .await?;
            history.record(queries, new_docs);
            found.extend(results.found);
            if round == req.max_loop {
                break;
            }
            if let Some(spent) = meter.spent() {
                stopped = Some(spent);
                break;
            }
            let Some(judged) =
                within_deadline(&meter, self.brain.judge(query, &history.documents)).await
            else {
                stopped = Some(Spent::Deadline);
                break;
            };
            let (verdict, tokens) = judged?;
            meter.add_tokens(tokens.prompt, tokens.completion);
            history.apply(&verdict.assessment);
            history.rewrite_query = verdict.rewrite_query;
            if verdict.is_answer {
                out.emit(Message::Progress(texts.enough(round))).await?;
                break;
            }
        }
        if let Some(spent) = stopped {
            crate::metrics::global().budget_spent(spent.name());
            out.emit(Message::Warning(budget_warning(
                query,
                texts.budget_spent(spent.name(), found.len()),
            )))
            .await?;
        }

        let max = match self.brain {
            super::Brain::Offline => OFFLINE_SOURCES.max(self.settings.max_sources),
            super::Brain::Llm(_) => self.settings.max_sources,
        };
        let mut docs: Vec<Document> = pick_sources(&found, max)
            .into_iter()
            .map(|f| f.doc.clone())
            .collect();
        self.read_pages(&mut docs, texts, &mut out).await?;

        // A model may write the answer only with tokens and time left; else the answer
        // is extracted from the documents, which costs neither.
        let mut brain = &self.brain;
        let model_spent = match (&self.brain, meter.spent()) {
            (super::Brain::Llm(_), Some(spent @ (Spent::LlmTokens | Spent::Deadline))) => {
                Some(spent)
            }
            _ => None,
        };
        if let Some(spent) = model_spent {
            brain = &super::Brain::Offline;
            out.emit(Message::Warning(budget_warning(
                query,
                texts.answered_offline(spent.name()),
            )))
            .await?;
        }
        out.emit(Message::Progress(texts.answering())).await?;
        let span = telemetry::answer_span(docs.len());
        // Entered so that a model call the answer makes is this span's child.
        let Answering {
            mut pieces,
            citing,
            checker,
            tokens,
        } = span.in_scope(|| {
            brain.answer(
                query,
                &history.searched,
                &docs,
                self.settings.answer_sentences,
                no_answer(locale),
                meter.tokens_left(),
            )
        });
        let mut batcher = Batcher::new(req.mode.batching);
        let mut answer = String::new();
        let written = async {
            loop {
                let next = match until(batcher.deadline()) {
                    Some(wait) => match tokio::time::timeout(wait, pieces.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            if let Some(batch) = batcher.flush() {
                                out.emit(Message::Answer(batch)).await?;
                            }
                            continue;
                        }
                    },
                    None => pieces.next().await,
                };
                let Some(piece) = next else { break };
                let piece = piece?;
                answer.push_str(&piece);
                if let Some(batch) = batcher.push(piece, Instant::now()) {
                    out.emit(Message::Answer(batch)).await?;
                }
            }
            if let Some(batch) = batcher.flush() {
                out.emit(Message::Answer(batch)).await?;
            }
            Ok::<(), DeepSearchError>(())
        }
        .instrument(span.clone())
        .await;
        match &written {
            Ok(()) => {
                span.record("chars", telemetry::int(answer.chars().count()));
            }
            Err(e) => telemetry::record_error(&span, e),
        }
        written?;
        drop(span);

        let citations = match checker {
            Some(c) => {
                let checked = c.lock().unwrap_or_else(|e| e.into_inner());
                checked.checks().to_vec()
            }
            None => Vec::new(),
        };
        if let Some(tokens) = tokens {
            let spent = tokens.spent(&answer);
            meter.add_tokens(spent.prompt, spent.completion);
        }
        let usage = meter.finish();
        crate::metrics::global().search_usage(&usage);
        let result = FinalData {
            sources: sources(&answer, &docs, &citing),
            citations,
            answer,
            loops: rounds,
            queries: history.searched,
            elapsed_ms: usage.elapsed_ms,
            usage,
        };
        out.emit(Message::Final(result.clone())).await?;
        Ok(result)
    }

    /// Replaces the content of the top documents with their fetched pages, when a page
    /// reader is set up. A page that cannot be read keeps its snippet and adds a warning.
    async fn read_pages<S: Sink>(
        &self,
        docs: &mut [Document],
        texts: Texts,
        out: &mut Filtered<'_, S>,
    ) -> Result<(), DeepSearchError> {
        let Some(reader) = &self.reader else {
            return Ok(());
        };
        let wanted: Vec<usize> = (0..docs.len())
            .filter(|&i| docs[i].url.starts_with("http://") || docs[i].url.starts_with("https://"))
            .take(self.settings.read_pages)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        out.emit(Message::Progress(texts.reading(wanted.len())))
            .await?;
        let fetches = wanted.iter().map(|&i| reader.fetch(&docs[i].url));
        let pages = futures::future::join_all(fetches).await;
        for (i, page) in wanted.into_iter().zip(pages) {
            match page {
                Ok(page) if !page.text.trim().is_empty() => {
                    docs[i].content = page.text.chars().take(PAGE_CHARS).collect();
                }
                Ok(_) => {}
                Err(e) => {
                    out.emit(Message::Warning(WarningData {
                        engine: "reader".into(),
                        query: docs[i].url.clone(),
                        message: e.to_string(),
                    }))
                    .await?
                }
            }
        }
        Ok(())
    }
}

/// Runs `call` (a model's plan or verdict) until the budget's deadline; `None` when the
/// deadline came first, and the call is dropped with its request.
async fn within_deadline<T>(
    meter: &Meter,
    call: impl std::future::Future<Output = T>,
) -> Option<T> {
    match meter.time_left() {
        None => Some(call.await),
        Some(left) => tokio::time::timeout(left, call).await.ok(),
    }
}

/// A `warning` about a budget: `engine` is `budget`, so a client tells it from an
/// engine's failure.
fn budget_warning(query: &str, message: String) -> WarningData {
    WarningData {
        engine: "budget".into(),
        query: query.to_string(),
        message,
    }
}

/// The sources an answer cites, numbered as in its text.
fn sources(answer: &str, docs: &[Document], citing: &Citing) -> Vec<SourceRef> {
    let source = |id: usize, doc: &Document| SourceRef {
        id,
        title: doc.title.clone(),
        url: doc.url.clone(),
    };
    match citing {
        Citing::Mapped(map) => map
            .iter()
            .enumerate()
            .filter_map(|(n, &i)| docs.get(i).map(|d| source(n + 1, d)))
            .collect(),
        Citing::Numbered => cited_numbers(answer, docs.len())
            .into_iter()
            .map(|n| source(n, &docs[n - 1]))
            .collect(),
    }
}
