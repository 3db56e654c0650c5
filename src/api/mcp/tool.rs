//! The `deepsearch` tool: its listing (input and output schemas), its arguments read
//! into a checked search request, and its result.

use serde_json::{json, Map, Value};

use super::jsonrpc::{Code, RpcError};
use crate::api::{parse_request, Limits, Route, SearchRequest, JSON_CONTENT_TYPE};
use crate::deepsearch::{FinalData, MAX_LOOP_RANGE};

/// The one tool served.
pub const TOOL_NAME: &str = "deepsearch";

/// The `tools/list` entry.
pub fn definition(engines: &[String]) -> Value {
    json!({
        "name": TOOL_NAME,
        "title": "Deep search",
        "description": "Searches in rounds (plan, parallel search on several engines, review) \
            and answers the question with [n] citations of the sources it found. Reports \
            its progress while it runs; takes seconds to minutes.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "The question to research."},
                "max_loop": {
                    "type": "integer",
                    "minimum": MAX_LOOP_RANGE.start(),
                    "maximum": MAX_LOOP_RANGE.end(),
                    "default": 3,
                    "description": "Search rounds at most."
                },
                "search_engines": {
                    "type": "array",
                    "items": {"type": "string", "enum": engines},
                    "description": "Engines to search (default: all configured)."
                }
            },
            "required": ["query"],
            "additionalProperties": false
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "answer": {"type": "string"},
                "sources": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "title": {"type": "string"},
                            "url": {"type": "string"}
                        },
                        "required": ["id", "title", "url"]
                    }
                }
            },
            "required": ["answer", "sources"]
        },
        "annotations": {"readOnlyHint": true, "openWorldHint": true}
    })
}

/// The `tools/call` params read into a checked search (the request model's own field
/// rules); a bad tool name or argument is `-32602` naming it.
pub fn arguments(
    params: &Map<String, Value>,
    limits: &Limits,
    engines: &[String],
) -> Result<SearchRequest, RpcError> {
    let invalid = |message: String| RpcError::new(200, Code::InvalidParams, message);
    match params.get("name") {
        Some(Value::String(name)) if name == TOOL_NAME => {}
        Some(Value::String(name)) => {
            return Err(invalid(format!(
                "unknown tool {name:?}: this server has {TOOL_NAME:?}"
            )))
        }
        _ => return Err(invalid("\"name\" must be the tool's name".into())),
    }
    let none = Map::new();
    let args = match params.get("arguments") {
        Some(Value::Object(args)) => args,
        None | Some(Value::Null) => &none,
        Some(_) => return Err(invalid("\"arguments\" must be an object".into())),
    };
    if let Some(extra) = args
        .keys()
        .find(|k| !matches!(k.as_str(), "query" | "max_loop" | "search_engines"))
    {
        return Err(invalid(format!(
            "unknown argument {extra:?}: the arguments are query, max_loop, search_engines"
        )));
    }
    let mut body = args.clone();
    // No resuming and no JSON-only reply here: the call's answer is its own stream.
    body.insert("stream".into(), Value::Bool(true));
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parse_request(
        Route::DeepSearch,
        Some(JSON_CONTENT_TYPE),
        &bytes,
        limits,
        engines,
    )
    .map_err(|e| match e.field {
        Some(field) => invalid(format!("invalid argument {field}: {}", e.message)),
        None => invalid(e.message),
    })
}

/// A finished search as a `CallToolResult`: the answer as text, each cited source as a
/// resource link, and `structuredContent` `{answer, sources}` (the output schema).
pub fn result(done: &FinalData) -> Value {
    let mut content = vec![json!({"type": "text", "text": done.answer})];
    content.extend(done.sources.iter().map(|s| {
        json!({
            "type": "resource_link",
            "uri": s.url,
            "name": format!("[{}] {}", s.id, s.title),
            "title": s.title,
            "description": format!("source [{}] of the answer", s.id),
        })
    }));
    json!({
        "content": content,
        "structuredContent": {"answer": done.answer, "sources": done.sources},
        "isError": false,
    })
}

/// A search that failed (a model error, every engine call failing): a tool error the
/// model can read, not a protocol error.
pub fn failure(message: &str) -> Value {
    json!({
        "content": [{"type": "text", "text": message}],
        "isError": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deepsearch::SourceRef;

    fn params(args: Value) -> Map<String, Value> {
        let Value::Object(p) = json!({"name": TOOL_NAME, "arguments": args}) else {
            unreachable!()
        };
        p
    }

    #[test]
    fn arguments_are_checked_by_the_request_rules() {
        let engines = ["local".to_string()];
        let limits = Limits::default();
        let ok = arguments(
            &params(json!({"query": "q", "max_loop": 2, "search_engines": ["local"]})),
            &limits,
            &engines,
        )
        .unwrap();
        assert_eq!(
            (ok.search.max_loop, ok.engines.clone()),
            (2, vec!["local".to_string()])
        );
        let message = |args: Value| {
            arguments(&params(args), &limits, &engines)
                .unwrap_err()
                .message
        };
        assert!(message(json!({"query": "q", "max_loop": 0})).contains("max_loop"));
        assert!(
            message(json!({"query": "q", "search_engines": ["bing"]})).contains("search_engines")
        );
        assert!(message(json!({})).contains("query"));
        assert!(message(json!({"query": "q", "stream": false})).contains("stream"));
        let mut other = params(json!({"query": "q"}));
        other.insert("name".into(), json!("nope"));
        let e = arguments(&other, &limits, &engines).unwrap_err();
        assert_eq!(e.code, Code::InvalidParams);
        assert!(e.message.contains("nope"));
    }

    #[test]
    fn results_link_every_cited_source() {
        let done = FinalData {
            answer: "Tokio is a runtime [1].".into(),
            sources: vec![SourceRef {
                id: 1,
                title: "Tokio".into(),
                url: "https://tokio.rs/".into(),
            }],
            loops: 1,
            queries: vec![],
            elapsed_ms: 1,
            citations: vec![],
            usage: Default::default(),
        };
        let r = result(&done);
        assert_eq!(r["content"][0]["text"], "Tokio is a runtime [1].");
        assert_eq!(r["content"][1]["type"], "resource_link");
        assert_eq!(r["content"][1]["uri"], "https://tokio.rs/");
        assert_eq!(r["structuredContent"]["sources"][0]["id"], 1);
        assert_eq!(failure("boom")["isError"], true);
    }
}
