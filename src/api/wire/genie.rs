//! The message shapes of JD's joyagent-jdgenie genie-tool (`/v1/tool/deepsearch`), so a
//! client of that service can point at this one unchanged.
//!
//! Its stream has no envelope: each event's data is `{"requestId", "query",
//! "searchResult": {"query", "docs"}, "isFinal", "messageType"}` (+ `"answer"` for
//! reports), with `messageType` `extend` (the plan), `search` (the results), `report`
//! (answer pieces, then a final one with `isFinal: true`). Lines it has no message for
//! (`status`, `progress`, `warning`) are not sent on this route.

use serde::Serialize;

use super::Encoder;
use crate::deepsearch::Message;
use crate::json_compat::to_python_json;

/// Characters of a document's text in `search` messages, as genie-tool's default.
const DOC_CHARS: usize = 200;

#[derive(Serialize)]
struct GenieDoc<'a> {
    doc_type: &'static str,
    content: String,
    title: &'a str,
    link: &'a str,
    data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct SearchResult<'a> {
    query: Vec<&'a str>,
    docs: Vec<Vec<GenieDoc<'a>>>,
}

#[derive(Serialize)]
struct GenieMessage<'a> {
    #[serde(rename = "requestId")]
    request_id: &'a str,
    query: &'a str,
    #[serde(rename = "searchResult")]
    search_result: SearchResult<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'a str>,
    #[serde(rename = "isFinal")]
    is_final: bool,
    #[serde(rename = "messageType")]
    message_type: &'static str,
}

/// Writes a search's messages in genie-tool's shapes.
#[derive(Debug, Clone)]
pub struct GenieFormat {
    request_id: String,
    query: String,
    /// genie-tool repeats the whole answer in the last report only when not streaming.
    stream: bool,
}

impl GenieFormat {
    pub fn new(request_id: &str, query: &str, stream: bool) -> Self {
        GenieFormat {
            request_id: request_id.to_string(),
            query: query.to_string(),
            stream,
        }
    }

    /// The genie-tool message for `message`, as JSON; `None` for lines it has no message for.
    pub fn encode(&self, message: &Message) -> Option<Vec<u8>> {
        let empty = || SearchResult {
            query: Vec::new(),
            docs: Vec::new(),
        };
        let msg = |search_result, answer, is_final, message_type| GenieMessage {
            request_id: &self.request_id,
            query: &self.query,
            search_result,
            answer,
            is_final,
            message_type,
        };
        let out = match message {
            Message::Plan(plan) => msg(
                SearchResult {
                    query: plan.queries.iter().map(String::as_str).collect(),
                    docs: plan.queries.iter().map(|_| Vec::new()).collect(),
                },
                None,
                false,
                "extend",
            ),
            Message::Intermediate(round) => msg(
                SearchResult {
                    query: round.results.iter().map(|r| r.query.as_str()).collect(),
                    docs: round
                        .results
                        .iter()
                        .map(|r| {
                            r.docs
                                .iter()
                                .map(|d| GenieDoc {
                                    doc_type: "web_page",
                                    content: d.snippet.chars().take(DOC_CHARS).collect(),
                                    title: &d.title,
                                    link: &d.url,
                                    data: serde_json::Map::new(),
                                })
                                .collect()
                        })
                        .collect(),
                },
                None,
                false,
                "search",
            ),
            Message::Answer(piece) => msg(empty(), Some(piece), false, "report"),
            Message::Final(done) => {
                let answer = if self.stream {
                    ""
                } else {
                    done.answer.as_str()
                };
                msg(empty(), Some(answer), true, "report")
            }
            Message::Status(_) | Message::Progress(_) | Message::Warning(_) => return None,
        };
        let mut json = Vec::with_capacity(256);
        // Plain structs of strings and bools always serialize.
        to_python_json(&out, &mut json).ok()?;
        Some(json)
    }
}

impl Encoder for GenieFormat {
    fn message(&mut self, message: &Message) -> Vec<String> {
        // serde_json writes UTF-8 only.
        self.encode(message)
            .map(|json| String::from_utf8_lossy(&json).into_owned())
            .into_iter()
            .collect()
    }

    /// genie-tool has no error message: the stream layer's `error` ends the stream.
    fn failed(&mut self, _message: &str, _code: &str) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deepsearch::{DocData, FinalData, IntermediateData, PlanData, QueryResults};

    fn sink(stream: bool) -> GenieFormat {
        GenieFormat::new("r1", "what is tokio", stream)
    }

    fn text(sink: &GenieFormat, m: &Message) -> String {
        String::from_utf8(sink.encode(m).unwrap()).unwrap()
    }

    #[test]
    fn genie_tool_shapes() {
        let s = sink(true);
        let plan = Message::Plan(PlanData {
            round: 1,
            queries: vec!["a".into(), "b".into()],
        });
        assert_eq!(
            text(&s, &plan),
            r#"{"requestId": "r1", "query": "what is tokio", "searchResult": {"query": ["a", "b"], "docs": [[], []]}, "isFinal": false, "messageType": "extend"}"#
        );
        let found = Message::Intermediate(IntermediateData {
            round: 1,
            results: vec![QueryResults {
                query: "a".into(),
                docs: vec![DocData {
                    title: "T".into(),
                    url: "https://t/".into(),
                    snippet: "x".repeat(300),
                    engine: "local".into(),
                    score: 1.0,
                }],
            }],
        });
        let v: serde_json::Value = serde_json::from_str(&text(&s, &found)).unwrap();
        assert_eq!(v["messageType"], "search");
        let doc = &v["searchResult"]["docs"][0][0];
        assert_eq!(doc["link"], "https://t/");
        assert_eq!(doc["doc_type"], "web_page");
        assert_eq!(doc["content"].as_str().unwrap().len(), DOC_CHARS);
        assert_eq!(
            text(&s, &Message::Answer("Tok".into())),
            r#"{"requestId": "r1", "query": "what is tokio", "searchResult": {"query": [], "docs": []}, "answer": "Tok", "isFinal": false, "messageType": "report"}"#
        );
        let fin = Message::Final(FinalData {
            answer: "Tokio [1]".into(),
            sources: Vec::new(),
            loops: 1,
            queries: Vec::new(),
            elapsed_ms: 1,
            citations: Vec::new(),
            usage: Default::default(),
        });
        let streamed: serde_json::Value = serde_json::from_str(&text(&s, &fin)).unwrap();
        assert_eq!(
            (streamed["answer"].as_str(), streamed["isFinal"].as_bool()),
            (Some(""), Some(true))
        );
        let whole: serde_json::Value = serde_json::from_str(&text(&sink(false), &fin)).unwrap();
        assert_eq!(whole["answer"], "Tokio [1]");
        assert!(s.encode(&Message::Status("x".into())).is_none());
    }
}
