//! The messages a search streams, their `data` shapes, and the human-readable lines in
//! each locale.

use serde::Serialize;

use super::budget::Usage;
use super::citations::CitationCheck;
use super::options::Locale;

/// `data` of a `plan` message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanData {
    #[serde(rename = "loop")]
    pub round: usize,
    pub queries: Vec<String>,
}

/// One document as reported in `intermediate` messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocData {
    pub title: String,
    pub url: String,
    pub snippet: String,
    /// The engine that found it (the first one, when several did).
    pub engine: String,
    pub score: f64,
}

/// The documents one sub-query contributed, new to this search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResults {
    pub query: String,
    pub docs: Vec<DocData>,
}

/// `data` of an `intermediate` message: one round's results, in sub-query order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntermediateData {
    #[serde(rename = "loop")]
    pub round: usize,
    pub results: Vec<QueryResults>,
}

/// `data` of a `warning` message: one engine call that failed; the round went on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarningData {
    pub engine: String,
    pub query: String,
    pub message: String,
}

/// A source the answer cites as `[id]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    pub id: usize,
    pub title: String,
    pub url: String,
}

/// `data` of the `final` message, and the result of a non-streaming search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinalData {
    pub answer: String,
    pub sources: Vec<SourceRef>,
    /// Rounds run.
    pub loops: usize,
    /// Every sub-query searched, in order.
    pub queries: Vec<String>,
    pub elapsed_ms: u64,
    /// The citation check of a model's answer, one verdict per `[n]` the model wrote;
    /// empty for an extractive (offline) answer, which quotes its sources.
    pub citations: Vec<CitationCheck>,
    /// What the search spent.
    pub usage: Usage,
}

/// One message of a search, before it is put in an envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Status(String),
    Progress(String),
    Plan(PlanData),
    Intermediate(IntermediateData),
    Answer(String),
    Warning(WarningData),
    Final(FinalData),
}

impl Message {
    /// The envelope's `type`.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::Message;
    /// assert_eq!(Message::Answer("x".into()).kind(), "answer");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Status(_) => "status",
            Message::Progress(_) => "progress",
            Message::Plan(_) => "plan",
            Message::Intermediate(_) => "intermediate",
            Message::Answer(_) => "answer",
            Message::Warning(_) => "warning",
            Message::Final(_) => "final",
        }
    }
}

/// Serializes as the envelope's `data`.
impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Message::Status(t) | Message::Progress(t) | Message::Answer(t) => t.serialize(s),
            Message::Plan(d) => d.serialize(s),
            Message::Intermediate(d) => d.serialize(s),
            Message::Warning(d) => d.serialize(s),
            Message::Final(d) => d.serialize(s),
        }
    }
}

/// The human-readable lines, per locale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Texts(pub Locale);

impl Texts {
    pub fn started(self) -> String {
        match self.0 {
            Locale::En => "Starting search...".into(),
            Locale::Zh => "开始搜索...".into(),
        }
    }

    pub fn round(self, round: usize) -> String {
        match self.0 {
            Locale::En => format!("Running search round {round}..."),
            Locale::Zh => format!("执行第{round}轮搜索..."),
        }
    }

    pub fn searching(self, round: usize, queries: usize, engines: usize) -> String {
        match self.0 {
            Locale::En => format!(
                "Round {round}: searching {queries} {} on {engines} {}...",
                plural(queries, "query", "queries"),
                plural(engines, "engine", "engines")
            ),
            Locale::Zh => format!("第{round}轮：在{engines}个搜索引擎上执行{queries}个查询..."),
        }
    }

    pub fn reviewing(self, round: usize, docs: usize) -> String {
        match self.0 {
            Locale::En => format!(
                "Round {round}: reviewing {docs} new {}...",
                plural(docs, "result", "results")
            ),
            Locale::Zh => format!("第{round}轮：分析{docs}条新结果..."),
        }
    }

    pub fn enough(self, round: usize) -> String {
        match self.0 {
            Locale::En => format!("Round {round}: the results answer the question."),
            Locale::Zh => format!("第{round}轮：已找到足够的信息。"),
        }
    }

    pub fn nothing_new(self, round: usize) -> String {
        match self.0 {
            Locale::En => format!("Round {round}: nothing new left to search."),
            Locale::Zh => format!("第{round}轮：没有新的查询可执行。"),
        }
    }

    pub fn reading(self, pages: usize) -> String {
        match self.0 {
            Locale::En => format!("Reading {pages} {}...", plural(pages, "page", "pages")),
            Locale::Zh => format!("读取{pages}个网页..."),
        }
    }

    /// A budget ran out (named as in the request): no more planning or searching.
    pub fn budget_spent(self, budget: &str, docs: usize) -> String {
        match self.0 {
            Locale::En => format!(
                "budget {budget} spent: no more searching; the answer is written from the {docs} {} found",
                plural(docs, "document", "documents")
            ),
            Locale::Zh => format!("预算 {budget} 已用完：停止搜索，根据已找到的{docs}个文档作答"),
        }
    }

    /// Calls the search-call budget left out of a round.
    pub fn calls_cut(self, budget: u64, cut: usize) -> String {
        match self.0 {
            Locale::En => format!(
                "budget max_search_calls ({budget}) reached: {cut} planned engine {} not made",
                plural(cut, "call", "calls")
            ),
            Locale::Zh => {
                format!("预算 max_search_calls（{budget}）已达上限：{cut}次计划的搜索未执行")
            }
        }
    }

    /// A model's answer would exceed a budget: the extractive answer is written instead.
    pub fn answered_offline(self, budget: &str) -> String {
        match self.0 {
            Locale::En => format!(
                "budget {budget} spent: the answer is extracted from the documents, without the model"
            ),
            Locale::Zh => format!("预算 {budget} 已用完：不再调用模型，答案直接摘自文档"),
        }
    }

    pub fn circuit_opened(self, failures: u32, cooldown: std::time::Duration) -> String {
        let secs = cooldown.as_secs_f64();
        match self.0 {
            Locale::En => format!(
                "circuit open: {failures} calls in a row failed; the engine is skipped for {secs} s"
            ),
            Locale::Zh => format!("熔断：连续{failures}次调用失败，{secs}秒内跳过该搜索引擎"),
        }
    }

    pub fn circuit_skipped(self) -> String {
        match self.0 {
            Locale::En => {
                "circuit open: the engine failed repeatedly and is skipped for now".into()
            }
            Locale::Zh => "熔断中：该搜索引擎多次失败，暂时跳过".into(),
        }
    }

    pub fn circuit_closed(self) -> String {
        match self.0 {
            Locale::En => "circuit closed: the engine answered again and is used again".into(),
            Locale::Zh => "熔断恢复：该搜索引擎已恢复，重新使用".into(),
        }
    }

    pub fn answering(self) -> String {
        match self.0 {
            Locale::En => "Writing the answer...".into(),
            Locale::Zh => "生成最终答案...".into(),
        }
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Envelope;

    #[test]
    fn data_shapes_are_the_contract() {
        let plan = Message::Plan(PlanData {
            round: 2,
            queries: vec!["a".into()],
        });
        let json = Envelope::new(plan.kind(), &plan, "r")
            .at(1.0)
            .to_json()
            .unwrap();
        assert_eq!(
            json,
            r#"{"type": "plan", "data": {"loop": 2, "queries": ["a"]}, "requestId": "r", "timestamp": 1.0}"#
        );
        let fin = Message::Final(FinalData {
            answer: "x [1]".into(),
            sources: vec![SourceRef {
                id: 1,
                title: "T".into(),
                url: "https://t".into(),
            }],
            loops: 1,
            queries: vec!["q".into()],
            elapsed_ms: 7,
            citations: vec![CitationCheck {
                id: 1,
                supported: false,
                score: 0.25,
                moved_to: None,
            }],
            usage: Usage {
                search_calls: 2,
                engine_failures: 1,
                llm_prompt_tokens: 30,
                llm_completion_tokens: 4,
                elapsed_ms: 7,
            },
        });
        let mut buf = Vec::new();
        crate::json_compat::to_python_json(&fin, &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"{"answer": "x [1]", "sources": [{"id": 1, "title": "T", "url": "https://t"}], "loops": 1, "queries": ["q"], "elapsed_ms": 7, "citations": [{"id": 1, "supported": false, "score": 0.25, "moved_to": null}], "usage": {"search_calls": 2, "engine_failures": 1, "llm_prompt_tokens": 30, "llm_completion_tokens": 4, "elapsed_ms": 7}}"#
        );
    }

    #[test]
    fn seed_strings_in_zh() {
        let zh = Texts(Locale::Zh);
        assert_eq!(zh.started(), "开始搜索...");
        assert_eq!(zh.round(2), "执行第2轮搜索...");
        let en = Texts(Locale::En);
        assert_eq!(
            en.searching(1, 1, 3),
            "Round 1: searching 1 query on 3 engines..."
        );
    }
}
