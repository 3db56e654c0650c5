//! `request_parser`: arbitrary bodies and content types through [`parse_request`].
//!
//! Properties:
//! - every refusal is a 4xx [`ApiError`] whose status and code agree (413
//!   `body_too_large`, 415 `unsupported_media_type`, 400 `invalid_json`, 422
//!   `invalid_request`), with a message, a `field` that is a request field
//!   when set, no `Retry-After`, and a JSON body carrying exactly those;
//! - transport checks come first and are right: 413 exactly when the body is
//!   over the limit, 415 for the content types known not to be JSON, 400
//!   exactly when the body is not JSON text;
//! - an accepted request keeps the documented invariants: the query is the
//!   body's `query`, not blank, without NUL, within both length limits; the
//!   request id is the body's (or a generated one) and valid; `max_loop` is
//!   the body's (or the route's default) within its range; `stream` is the
//!   body's (default true); the engines are configured ones, lowercase,
//!   without repeats; token batches are 1 to 1 000 000 pieces, time batches
//!   at most an hour, and the genie-tool route always batches; the body is
//!   kept byte for byte;
//! - parsing is deterministic (up to a generated request id).
//!
//! Input: `[flags][content type...][body...]`. Flags bit 0: genie-tool
//! route; bit 1: small limits (256-byte body, 16-character query); bits 2-4:
//! the content type, an index into [`CONTENT_TYPES`], where 7 reads the
//! content type from the input (a length byte and that many bytes).

use std::time::Duration;

use deepsearch_stream::api::{
    parse_request, valid_request_id, ApiError, Limits, Route, SearchRequest,
};
use deepsearch_stream::deepsearch::{Batching, MAX_LOOP_RANGE, MAX_QUERY_CHARS};
use serde_json::{Map, Value};

use super::bytes_reader::BytesReader;

/// Content types by index, and whether they are JSON.
const CONTENT_TYPES: [(Option<&str>, bool); 7] = [
    (Some("application/json"), true),
    (None, false),
    (Some("Application/JSON; charset=utf-8"), true),
    (Some("application/problem+json"), true),
    (Some("text/plain"), false),
    (Some("application/x-www-form-urlencoded"), false),
    (Some(""), false),
];

const ENGINES: [&str; 2] = ["local", "searxng"];

const FIELDS: [&str; 6] = [
    "query",
    "request_id",
    "max_loop",
    "stream",
    "stream_mode",
    "search_engines",
];

pub fn check(data: &[u8]) {
    let mut reader = BytesReader::new(data);
    let flags = reader.byte();
    let route = if flags & 1 != 0 {
        Route::GenieTool
    } else {
        Route::DeepSearch
    };
    let limits = if flags & 2 != 0 {
        Limits {
            max_body_bytes: 256,
            max_query_chars: 16,
            ..Limits::default()
        }
    } else {
        Limits::default()
    };
    let custom_content_type;
    let (content_type, is_json) = match usize::from((flags >> 2) & 7) {
        7 => {
            custom_content_type = reader.short_string();
            (Some(custom_content_type.as_str()), None)
        }
        i => (CONTENT_TYPES[i].0, Some(CONTENT_TYPES[i].1)),
    };
    let body = reader.rest();
    let engines: Vec<String> = ENGINES.iter().map(|e| e.to_string()).collect();

    let result = parse_request(route, content_type, body, &limits, &engines);
    let again = parse_request(route, content_type, body, &limits, &engines);

    if body.len() > limits.max_body_bytes {
        assert_eq!(result.as_ref().map_err(|e| e.status), Err(413));
    } else if is_json == Some(false) {
        assert_eq!(result.as_ref().map_err(|e| e.status), Err(415));
    }
    let parsed = serde_json::from_slice::<Value>(body);
    let transport_ok = body.len() <= limits.max_body_bytes && is_json != Some(false);
    if transport_ok && is_json == Some(true) {
        let status = result.as_ref().err().map(|e| e.status);
        assert_eq!(
            status == Some(400),
            parsed.is_err(),
            "{status:?} {parsed:?}"
        );
    }

    match result {
        Err(error) => {
            check_refusal(&error);
            assert_eq!(again, Err(error), "not deterministic");
        }
        Ok(request) => {
            let Ok(Value::Object(obj)) = parsed else {
                panic!("accepted a body that is not a JSON object: {request:?}");
            };
            check_accepted(&request, route, &limits, &obj, body);
            let mut again = again.expect("accepted once, refused the second time");
            if obj_field(&obj, "request_id", "requestId").is_none() {
                again.request_id.clone_from(&request.request_id);
            }
            assert_eq!(again, request, "not deterministic");
        }
    }
}

fn check_refusal(error: &ApiError) {
    let expected_code = match error.status {
        413 => "body_too_large",
        415 => "unsupported_media_type",
        400 => "invalid_json",
        422 => "invalid_request",
        other => panic!("refused with status {other}: {error:?}"),
    };
    assert_eq!(error.code.as_str(), expected_code, "{error:?}");
    assert!(!error.message.trim().is_empty(), "{error:?}");
    if let Some(field) = &error.field {
        assert!(FIELDS.contains(&field.as_str()), "{error:?}");
    }
    assert_eq!(error.retry_after, None);
    assert!(error.headers().is_empty());

    let body: Value = serde_json::from_slice(&error.body()).expect("error body is JSON");
    let fields = &body["error"];
    assert_eq!(fields["code"], error.code.as_str());
    assert_eq!(fields["message"], error.message.as_str());
    assert_eq!(
        fields["field"],
        error.field.as_deref().map_or(Value::Null, Value::from)
    );
}

/// The value of `snake` or else `camel`, as the parser reads aliases; null is absent.
fn obj_field<'a>(obj: &'a Map<String, Value>, snake: &str, camel: &str) -> Option<&'a Value> {
    obj.get(snake)
        .or_else(|| obj.get(camel))
        .filter(|v| !v.is_null())
}

fn check_accepted(
    request: &SearchRequest,
    route: Route,
    limits: &Limits,
    obj: &Map<String, Value>,
    body: &[u8],
) {
    let query = &request.search.query;
    assert_eq!(
        obj.get("query").and_then(Value::as_str),
        Some(query.as_str())
    );
    assert!(
        !query.trim().is_empty() && !query.contains('\0'),
        "{query:?}"
    );
    let chars = query.chars().count();
    assert!(chars <= limits.max_query_chars && chars <= MAX_QUERY_CHARS);

    assert!(valid_request_id(&request.request_id), "{request:?}");
    match obj_field(obj, "request_id", "requestId") {
        Some(id) => assert_eq!(id.as_str(), Some(request.request_id.as_str())),
        None => assert_eq!(request.request_id.len(), 32, "generated id"),
    }

    let max_loop = request.search.max_loop;
    assert!(MAX_LOOP_RANGE.contains(&max_loop), "{request:?}");
    match obj_field(obj, "max_loop", "maxLoop") {
        Some(n) => assert_eq!(n.as_u64(), Some(max_loop as u64)),
        None => {
            let default = if route == Route::GenieTool { 1 } else { 3 };
            assert_eq!(max_loop, default);
        }
    }

    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(true);
    assert_eq!(request.stream, stream);

    for (i, engine) in request.engines.iter().enumerate() {
        assert!(ENGINES.contains(&engine.as_str()), "{request:?}");
        assert!(!request.engines[..i].contains(engine), "{request:?}");
    }
    if obj_field(obj, "search_engines", "searchEngines").is_none() {
        assert!(request.engines.is_empty());
    }

    match request.search.mode.batching {
        Batching::General => assert_ne!(route, Route::GenieTool, "genie-tool always batches"),
        Batching::Tokens(n) => assert!((1..=1_000_000).contains(&n), "{request:?}"),
        Batching::Every(every) => assert!(every <= Duration::from_secs(3600), "{request:?}"),
    }
    assert_eq!(request.body, body);
}
