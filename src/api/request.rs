//! The request bodies both routes accept, parsed and checked field by field so every
//! refusal names the field at fault.

use serde_json::{Map, Value};

use super::wire::Format;
use super::{ApiError, ErrorCode, Limits, Route};
use crate::deepsearch::{Batching, Budget, Locale, Request, StreamMode, MAX_LOOP_RANGE};

/// Longest `request_id` accepted: it ends up in logs, SSE ids and storage keys.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A checked search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub request_id: String,
    pub search: Request,
    /// `false`: answer with the final result as JSON, no stream.
    pub stream: bool,
    /// Engines to use, a subset of the configured ones; empty: all of them.
    pub engines: Vec<String>,
    /// The body as received, for relaying it to an upstream service unchanged.
    pub body: bytes::Bytes,
    /// `Last-Event-ID`: resume this request id's stream after that id instead of
    /// starting a search (set by [`Service::with_resume`](super::Service::with_resume)).
    pub resume: Option<super::query::ResumePoint>,
    /// What the route's protocol echoes in its frames (model, thread and run ids).
    pub wire: super::wire::WireOptions,
}

/// True when `id` is 1 to [`MAX_REQUEST_ID_CHARS`] characters from `A-Z a-z 0-9 . _ : -`.
///
/// ```
/// use deepsearch_stream::api::valid_request_id;
/// assert!(valid_request_id("req-42:a.b_c"));
/// assert!(!valid_request_id("bad\nid") && !valid_request_id("") && !valid_request_id("a b"));
/// ```
pub fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A fresh random request id, for requests that bring none.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// True for `application/json`, with or without parameters, any letter case.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .rsplit_once('+')
            .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Some(field), message)
}

/// The value of `snake` or, when absent, of its camelCase alias.
fn field<'a>(obj: &'a Map<String, Value>, snake: &str, camel: &str) -> Option<&'a Value> {
    obj.get(snake)
        .or_else(|| obj.get(camel))
        .filter(|v| !v.is_null())
}

/// Parses and checks a request body for `route`.
///
/// `content_type` is the request's header (`None` when absent); `engines` the names of
/// the engines this service has, which `search_engines` must be drawn from.
pub fn parse_request(
    route: Route,
    content_type: Option<&str>,
    body: &[u8],
    limits: &Limits,
    engines: &[String],
) -> Result<SearchRequest, ApiError> {
    if body.len() > limits.max_body_bytes {
        return Err(ApiError::body_too_large(limits.max_body_bytes));
    }
    match content_type {
        Some(ct) if is_json(ct) => {}
        other => {
            return Err(ApiError::new(
                415,
                ErrorCode::UnsupportedMediaType,
                None,
                format!(
                    "expected Content-Type: application/json, got {}",
                    other.map_or_else(|| "none".to_string(), |c| format!("{c:?}"))
                ),
            ))
        }
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            400,
            ErrorCode::InvalidJson,
            None,
            format!("request body is not UTF-8: {e}"),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            400,
            ErrorCode::InvalidJson,
            None,
            format!("request body is not JSON: {e}"),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::invalid(
            None,
            "request body must be a JSON object",
        ));
    };
    let format = route.format();
    let (obj, wire) = super::wire::canonical(format, &obj)?;
    let mut req = parse_fields(route, &obj, limits, engines).map_err(|mut e| {
        // Named as the protocol's request names them.
        let renamed = match (format, e.field.as_deref()) {
            (Format::OpenAi | Format::AiSdk | Format::AgUi, Some("query")) => Some("messages"),
            (Format::AiSdk, Some("request_id")) => Some("id"),
            (Format::AgUi, Some("max_loop" | "search_engines" | "locale")) => {
                Some("forwardedProps")
            }
            _ => None,
        };
        if let Some(field) = renamed {
            e.field = Some(field.to_string());
        }
        e
    })?;
    req.body = bytes::Bytes::copy_from_slice(body);
    req.wire = wire;
    Ok(req)
}

/// The contract's fields of a request object, checked.
fn parse_fields(
    route: Route,
    obj: &Map<String, Value>,
    limits: &Limits,
    engines: &[String],
) -> Result<SearchRequest, ApiError> {
    let query = match obj.get("query") {
        Some(Value::String(q)) => q.clone(),
        None | Some(Value::Null) => return Err(invalid("query", "is required")),
        Some(_) => return Err(invalid("query", "must be a string")),
    };
    let request_id = match field(obj, "request_id", "requestId") {
        None => new_request_id(),
        Some(Value::String(id)) if valid_request_id(id) => id.clone(),
        Some(Value::String(_)) => {
            return Err(invalid(
                "request_id",
                format!(
                    "must be 1 to {MAX_REQUEST_ID_CHARS} characters from A-Z, a-z, 0-9, '.', \
                     '_', ':' and '-'"
                ),
            ))
        }
        Some(_) => return Err(invalid("request_id", "must be a string")),
    };
    let default_loop = match route {
        // genie-tool's own default.
        Route::GenieTool => 1,
        _ => 3,
    };
    let max_loop = match field(obj, "max_loop", "maxLoop") {
        None => default_loop,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(n) if MAX_LOOP_RANGE.contains(&usize::try_from(n).unwrap_or(0)) => n as usize,
            _ => {
                return Err(invalid(
                    "max_loop",
                    format!(
                        "must be a whole number from {} to {}, got {n}",
                        MAX_LOOP_RANGE.start(),
                        MAX_LOOP_RANGE.end()
                    ),
                ))
            }
        },
        Some(_) => return Err(invalid("max_loop", "must be an integer")),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream", "must be true or false")),
    };
    let mut mode = match field(obj, "stream_mode", "streamMode") {
        None => StreamMode::default(),
        Some(v) => StreamMode::from_value(v).map_err(ApiError::from)?,
    };
    if route == Route::GenieTool && mode.batching == Batching::General {
        // genie-tool sends a report every `token` pieces (5 by default) in every mode,
        // so `token` is held to the token mode's rules here too (found by fuzzing: a
        // huge token was taken as is, 0 or 2.5 silently became 5).
        let token = field(obj, "stream_mode", "streamMode")
            .and_then(|m| m.get("token"))
            .and_then(Value::as_f64);
        mode.batching = StreamMode::from_object(Some("token"), token, None)
            .map_err(ApiError::from)?
            .batching;
    }
    let mut wanted = Vec::new();
    match field(obj, "search_engines", "searchEngines") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(name) = item else {
                    return Err(invalid("search_engines", "must be a list of engine names"));
                };
                let name = name.trim().to_ascii_lowercase();
                if !engines.contains(&name) {
                    return Err(invalid(
                        "search_engines",
                        format!(
                            "engine {name:?} is not configured here; available: {}",
                            engines.join(", ")
                        ),
                    ));
                }
                if !wanted.contains(&name) {
                    wanted.push(name);
                }
            }
        }
        Some(_) => return Err(invalid("search_engines", "must be a list of engine names")),
    }
    // Per request, as the status lines it names are: the server's `--locale` otherwise.
    let locale = match obj.get("locale") {
        None | Some(Value::Null) => None,
        Some(Value::String(tag)) => Some(Locale::parse(tag).map_err(ApiError::from)?),
        Some(_) => {
            return Err(invalid(
                "locale",
                "must be a string such as \"en\" or \"zh\"",
            ))
        }
    };
    // What the search may spend; the service holds it to the server's ceilings.
    let budget = match obj.get("budget") {
        None | Some(Value::Null) => Budget::default(),
        Some(v) => Budget::from_value(v).map_err(ApiError::from)?,
    };
    let search = Request::new(query)
        .max_loop(max_loop)
        .mode(mode)
        .locale(locale)
        .budget(budget);
    search.validate().map_err(ApiError::from)?;
    if search.query.chars().count() > limits.max_query_chars {
        return Err(invalid(
            "query",
            format!("at most {} characters are allowed", limits.max_query_chars),
        ));
    }
    Ok(SearchRequest {
        request_id,
        search,
        stream,
        engines: wanted,
        body: bytes::Bytes::new(),
        resume: None,
        wire: super::wire::WireOptions::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(route: Route, body: &str) -> Result<SearchRequest, ApiError> {
        parse_request(
            route,
            Some("application/json"),
            body.as_bytes(),
            &Limits::default(),
            &["local".to_string(), "searxng".to_string()],
        )
    }

    fn field_of(body: &str) -> Option<String> {
        parse(Route::DeepSearch, body).unwrap_err().field
    }

    #[test]
    fn defaults_and_aliases() {
        let r = parse(Route::DeepSearch, r#"{"query": "q", "requestId": "r1"}"#).unwrap();
        assert_eq!(
            (r.request_id.as_str(), r.search.max_loop, r.stream),
            ("r1", 3, true)
        );
        let r = parse(
            Route::GenieTool,
            r#"{"query": "q", "request_id": "r", "maxLoop": 2, "streamMode": {"mode": "token", "token": 3},
                "searchEngines": ["SearXNG", "searxng"], "stream": false}"#,
        )
        .unwrap();
        assert_eq!(r.search.max_loop, 2);
        assert_eq!(r.engines, ["searxng"]);
        assert!(!r.stream);
        let g = parse(Route::GenieTool, r#"{"query": "q"}"#).unwrap();
        assert_eq!(g.search.max_loop, 1);
        assert_eq!(g.search.mode.batching, Batching::Tokens(5));
        let g = parse(
            Route::GenieTool,
            r#"{"query": "q", "streamMode": {"mode": "general", "token": 2}}"#,
        )
        .unwrap();
        assert_eq!(g.search.mode.batching, Batching::Tokens(2));
        assert_eq!(g.request_id.len(), 32, "generated");
    }

    #[test]
    fn a_locale_per_request() {
        let r = parse(Route::DeepSearch, r#"{"query": "q", "locale": "zh-CN"}"#).unwrap();
        assert_eq!(r.search.locale, Some(Locale::Zh));
        let r = parse(Route::DeepSearch, r#"{"query": "q"}"#).unwrap();
        assert_eq!(r.search.locale, None, "the server's");
        assert_eq!(
            field_of(r#"{"query": "q", "locale": "fr"}"#).as_deref(),
            Some("locale")
        );
        assert_eq!(
            field_of(r#"{"query": "q", "locale": 1}"#).as_deref(),
            Some("locale")
        );
    }

    #[test]
    fn a_budget_per_request() {
        let r = parse(
            Route::DeepSearch,
            r#"{"query": "q", "budget": {"max_search_calls": 3, "max_llm_tokens": 500, "deadline_s": 1.5}}"#,
        )
        .unwrap();
        assert_eq!(r.search.budget.max_search_calls, Some(3));
        assert_eq!(r.search.budget.max_llm_tokens, Some(500));
        assert_eq!(
            r.search.budget.deadline,
            Some(std::time::Duration::from_millis(1500))
        );
        let r = parse(Route::DeepSearch, r#"{"query": "q"}"#).unwrap();
        assert_eq!(r.search.budget, Budget::default());
        for bad in [
            r#"{"query": "q", "budget": 3}"#,
            r#"{"query": "q", "budget": {"max_search_calls": 0}}"#,
            r#"{"query": "q", "budget": {"deadline_s": -1}}"#,
            r#"{"query": "q", "budget": {"tokens": 5}}"#,
        ] {
            assert_eq!(field_of(bad).as_deref(), Some("budget"), "{bad}");
        }
    }

    #[test]
    fn every_refusal_names_its_field() {
        assert_eq!(field_of(r#"{}"#).as_deref(), Some("query"));
        assert_eq!(field_of(r#"{"query": 3}"#).as_deref(), Some("query"));
        assert_eq!(field_of(r#"{"query": " "}"#).as_deref(), Some("query"));
        assert_eq!(
            field_of(r#"{"query": "q", "max_loop": 0}"#).as_deref(),
            Some("max_loop")
        );
        assert_eq!(
            field_of(r#"{"query": "q", "max_loop": 2.5}"#).as_deref(),
            Some("max_loop")
        );
        assert_eq!(
            field_of(r#"{"query": "q", "max_loop": true}"#).as_deref(),
            Some("max_loop")
        );
        assert_eq!(
            field_of(r#"{"query": "q", "stream": "yes"}"#).as_deref(),
            Some("stream")
        );
        assert_eq!(
            field_of(r#"{"query": "q", "stream_mode": "loud"}"#).as_deref(),
            Some("stream_mode")
        );
        assert_eq!(
            field_of(r#"{"query": "q", "search_engines": ["bing"]}"#).as_deref(),
            Some("search_engines")
        );
        assert_eq!(
            field_of(r#"{"query": "q", "request_id": "a\r\nb"}"#).as_deref(),
            Some("request_id")
        );
        let e = parse(Route::DeepSearch, "[1]").unwrap_err();
        assert_eq!((e.status, e.field), (422, None));
    }

    #[test]
    fn transport_level_refusals() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let e = parse_request(
            Route::DeepSearch,
            Some("application/json"),
            &[b' '; 11],
            &limits,
            &[],
        )
        .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (413, "body_too_large"));
        let e = parse_request(
            Route::DeepSearch,
            Some("text/plain"),
            b"{}",
            &Limits::default(),
            &[],
        )
        .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (415, "unsupported_media_type"));
        let e = parse_request(Route::DeepSearch, None, b"{}", &Limits::default(), &[]).unwrap_err();
        assert_eq!(e.status, 415);
        let ok = Some("Application/JSON; charset=utf-8");
        let e =
            parse_request(Route::DeepSearch, ok, b"\xff{", &Limits::default(), &[]).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_json"));
        let e = parse_request(Route::DeepSearch, ok, b"{", &Limits::default(), &[]).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_json"));
    }
}
