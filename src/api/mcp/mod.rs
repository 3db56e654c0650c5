//! Deep search as an MCP tool over Streamable HTTP (`POST /mcp`), whole: a head and a
//! body in, an [`Answer`] out, as [`Service::handle`] is for the search routes. Both
//! faces call [`Service::mcp`], so they answer alike by construction (the `rmcp` crate
//! would have served only the axum face).
//!
//! Two eras of the protocol:
//! - 2025-06-18 and 2025-11-25: `initialize` negotiates the version and hands out an
//!   `Mcp-Session-Id`; later requests carry `MCP-Protocol-Version` (absent: 2025-03-26,
//!   as the spec says to assume, which is served alike); `ping`; `notifications/cancelled`
//!   stops a call of the same session.
//! - 2026-07-28: no handshake. `server/discover` tells what is served; every request
//!   carries its version and the client's capabilities in `params._meta`, mirrored in
//!   the `MCP-Protocol-Version` and `Mcp-Method` (and, for `tools/call`, `Mcp-Name`)
//!   headers; a call is cancelled by closing its response stream.
//!
//! A call answers with an SSE stream: `notifications/progress` when the request gave a
//! `progressToken`, then the response, and nothing else. Closing it stops the search in
//! every revision: the stream cannot be resumed, so nobody could read its result.

mod call;
mod jsonrpc;
mod tool;

use serde_json::{json, Map, Value};

use call::Call;
pub use call::OpenCalls;
use jsonrpc::{response, Code, Incoming, RpcError};

use super::{Answer, AnswerBody, RequestBody, Service, JSON_CONTENT_TYPE, SSE_HEADERS};

/// Where MCP is served, and its requests' label in the metrics.
pub const PATH: &str = "/mcp";

/// The revisions served through `initialize`, oldest first.
pub const HANDSHAKE_VERSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];
/// The revision with the per-request envelope.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The version a request without `MCP-Protocol-Version` is taken to speak.
const ASSUMED_VERSION: &str = "2025-03-26";

const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

const INSTRUCTIONS: &str = "Call `deepsearch` with a question to get an answer with [n] \
    citations and its sources; it searches in rounds and reports its progress.";

/// What [`Service::mcp`] reads of a request besides its body (header values as the face
/// decoded them; `None` when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct McpHead<'a> {
    pub content_type: Option<&'a str>,
    pub accept: Option<&'a str>,
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<&'a str>,
    /// `Mcp-Session-Id`.
    pub session_id: Option<&'a str>,
    /// `Mcp-Method` (2026-07-28).
    pub method: Option<&'a str>,
    /// `Mcp-Name` (2026-07-28).
    pub name: Option<&'a str>,
}

impl Service {
    /// Answers one `POST /mcp`. Must be called on a tokio runtime.
    pub async fn mcp(&self, head: McpHead<'_>, body: RequestBody) -> Answer {
        let answer = match self.mcp_answer(&head, body) {
            Ok(answer) => answer,
            Err(e) => {
                // Not the message: it may quote the request.
                tracing::info!(
                    status = e.status,
                    code = e.code.number(),
                    "mcp request refused"
                );
                let mut answer = json_answer(e.status, e.body());
                if e.status == 503 {
                    // The concurrency limit: a slot frees up soon.
                    answer.headers.push(("retry-after", "1".to_string()));
                }
                answer
            }
        };
        if answer.status >= 400 {
            crate::metrics::global().request(PATH, answer.status, Default::default());
        }
        answer
    }

    fn mcp_answer(&self, head: &McpHead<'_>, body: RequestBody) -> Result<Answer, RpcError> {
        let body = match body {
            RequestBody::Read(bytes) => bytes,
            RequestBody::Absent => bytes::Bytes::new(),
            RequestBody::TooLarge => {
                let limit = self.limits().max_body_bytes;
                let message = format!("request body is larger than {limit} bytes");
                return Err(RpcError::new(413, Code::InvalidRequest, message));
            }
            RequestBody::TimedOut(wait) => {
                let message = format!(
                    "the request body did not arrive within {} s",
                    wait.as_secs_f64()
                );
                return Err(RpcError::new(408, Code::InvalidRequest, message));
            }
            RequestBody::Unreadable(why) => {
                let message = format!("the request body could not be read: {why}");
                return Err(RpcError::new(400, Code::InvalidRequest, message));
            }
        };
        let json_body = head.content_type.is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case(JSON_CONTENT_TYPE)
        });
        if !json_body {
            let message = "expected Content-Type: application/json";
            return Err(RpcError::new(415, Code::InvalidRequest, message));
        }
        let incoming = Incoming::parse(&body)?;
        let modern = match &incoming {
            Incoming::Request { method, params, .. }
            | Incoming::Notification { method, params } => {
                method == "server/discover"
                    || head.protocol_version == Some(MODERN_VERSION)
                    || meta(params).is_some_and(|m| m.contains_key(PROTOCOL_VERSION_KEY))
            }
            Incoming::Response => false,
        };
        match incoming {
            // 2026-07-28 has no client notifications (closing a stream is the only
            // cancel); in the older revisions only a cancellation asks anything of us.
            Incoming::Notification { method, params } => {
                if !modern && method == "notifications/cancelled" {
                    if let Some(id) = params.get("requestId") {
                        let found = self.mcp_calls().cancel(head.session_id, id);
                        tracing::info!(request = %id, found, "mcp call cancelled");
                    }
                }
                Ok(accepted())
            }
            Incoming::Response => Ok(accepted()),
            Incoming::Request { id, method, params } if modern => {
                self.modern(head, &id, &method, &params).map_err(|e| {
                    // Errors of the method itself get the revision's status for their
                    // code; those of the transport keep theirs.
                    let status = if e.status == 200 {
                        modern_status(e.code)
                    } else {
                        e.status
                    };
                    RpcError {
                        status,
                        ..e.to(&id)
                    }
                })
            }
            Incoming::Request { id, method, params } => self
                .handshake_era(head, &id, &method, &params)
                .map_err(|e| e.to(&id)),
        }
    }

    /// A request of the 2025 revisions.
    fn handshake_era(
        &self,
        head: &McpHead<'_>,
        id: &Value,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Answer, RpcError> {
        if method == "initialize" {
            let Some(Value::String(asked)) = params.get("protocolVersion") else {
                let message = "initialize needs params.protocolVersion";
                return Err(RpcError::new(200, Code::InvalidParams, message));
            };
            // The client's version when served, else the newest: the client decides.
            let version = HANDSHAKE_VERSIONS
                .into_iter()
                .find(|v| *v == asked.as_str())
                .unwrap_or(HANDSHAKE_VERSIONS[1]);
            let result = json!({
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            });
            let mut answer = json_answer(200, response(id, result));
            let session = crate::api::new_request_id();
            tracing::info!(version = %version, session = %session, "mcp session initialized");
            answer.headers.push(("mcp-session-id", session));
            return Ok(answer);
        }
        let version = head.protocol_version.unwrap_or(ASSUMED_VERSION);
        if version != ASSUMED_VERSION && !HANDSHAKE_VERSIONS.contains(&version) {
            let message = format!(
                "unsupported MCP-Protocol-Version {version:?}; supported: {}, {MODERN_VERSION}",
                HANDSHAKE_VERSIONS.join(", ")
            );
            return Err(RpcError::new(400, Code::InvalidRequest, message));
        }
        match method {
            "ping" => Ok(json_answer(200, response(id, json!({})))),
            "tools/list" => Ok(json_answer(200, response(id, self.tool_list()))),
            "tools/call" => {
                let call = Call {
                    id: id.clone(),
                    session: head.session_id.map(str::to_owned),
                    progress_token: progress_token(params),
                    modern: false,
                };
                self.call(head, call, params)
            }
            other => Err(not_found(other)),
        }
    }

    /// A request of 2026-07-28: the envelope checked rung by rung, as the revision
    /// orders them (shape, headers, version), then the method.
    fn modern(
        &self,
        head: &McpHead<'_>,
        id: &Value,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Answer, RpcError> {
        let invalid = |message: String| RpcError::new(400, Code::InvalidParams, message);
        let Some(meta) = meta(params) else {
            return Err(invalid(format!(
                "params._meta must be an object with {PROTOCOL_VERSION_KEY:?} and \
                 {CLIENT_CAPABILITIES_KEY:?}"
            )));
        };
        for key in [PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY] {
            if !meta.contains_key(key) {
                return Err(invalid(format!("params._meta is missing {key:?}")));
            }
        }
        let version = &meta[PROTOCOL_VERSION_KEY];
        let mismatch = |header: &str, what: &str| {
            RpcError::new(
                400,
                Code::HeaderMismatch,
                format!("the {header} header does not match the request's {what}"),
            )
        };
        if head
            .protocol_version
            .is_none_or(|v| Some(v) != version.as_str())
        {
            return Err(mismatch("MCP-Protocol-Version", "protocol version"));
        }
        if head.method != Some(method) {
            return Err(mismatch("Mcp-Method", "method"));
        }
        if method == "tools/call" {
            let name = params.get("name").and_then(Value::as_str);
            // A name the client had to base64-wrap cannot be ours: the tool call's own
            // check names it.
            let wrapped = head.name.is_some_and(|n| n.starts_with("=?base64?"));
            if name.is_some() && !wrapped && head.name != name {
                return Err(mismatch("Mcp-Name", "tool name"));
            }
        }
        let Some(version) = version.as_str() else {
            return Err(invalid("the protocol version must be a string".into()));
        };
        if version != MODERN_VERSION {
            let e = RpcError::new(
                400,
                Code::UnsupportedProtocolVersion,
                "Unsupported protocol version",
            );
            return Err(e.with_data(json!({"supported": [MODERN_VERSION], "requested": version})));
        }
        let complete = |mut result: Value| {
            result["resultType"] = json!("complete");
            json_answer(200, response(id, result))
        };
        match method {
            "server/discover" => {
                let mut supported: Vec<&str> = HANDSHAKE_VERSIONS.to_vec();
                supported.push(MODERN_VERSION);
                Ok(complete(json!({
                    "supportedVersions": supported,
                    "capabilities": {"tools": {"listChanged": false}},
                    "instructions": INSTRUCTIONS,
                    "cacheScope": "public",
                    "ttlMs": 0,
                    "_meta": {SERVER_INFO_KEY: server_info()},
                })))
            }
            "tools/list" => {
                let mut result = self.tool_list();
                result["cacheScope"] = json!("public");
                result["ttlMs"] = json!(0);
                Ok(complete(result))
            }
            "tools/call" => {
                let call = Call {
                    id: id.clone(),
                    session: None,
                    progress_token: progress_token(params),
                    modern: true,
                };
                self.call(head, call, params)
            }
            other => Err(not_found(other)),
        }
    }

    fn tool_list(&self) -> Value {
        let engines: Vec<String> = self
            .deepsearch()
            .engine_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        json!({"tools": [tool::definition(&engines)]})
    }

    /// `tools/call`: the arguments checked here, the search on its stream.
    fn call(
        &self,
        head: &McpHead<'_>,
        call: Call,
        params: &Map<String, Value>,
    ) -> Result<Answer, RpcError> {
        let streams = head.accept.is_none_or(|accept| {
            accept.split(',').any(|t| {
                let t = t.split(';').next().unwrap_or("").trim();
                t.eq_ignore_ascii_case("text/event-stream") || t == "*/*"
            })
        });
        if !streams {
            let message =
                "a tool call answers with text/event-stream: the Accept header must allow it";
            return Err(RpcError::new(406, Code::InvalidRequest, message));
        }
        let engines: Vec<String> = self
            .deepsearch()
            .engine_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let req = tool::arguments(params, self.limits(), &engines)?;
        tracing::info!(request_id = %req.request_id, id = %call.id, max_loop = req.search.max_loop,
            progress = call.progress_token.is_some(), "mcp call started");
        let stream = call::start(self, call, req)?;
        Ok(Answer {
            status: 200,
            headers: SSE_HEADERS
                .iter()
                .map(|&(k, v)| (k, v.to_string()))
                .collect(),
            body: AnswerBody::Stream(stream),
        })
    }
}

fn meta(params: &Map<String, Value>) -> Option<&Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

fn progress_token(params: &Map<String, Value>) -> Option<Value> {
    meta(params)
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_number())
        .cloned()
}

fn server_info() -> Value {
    json!({"name": "deepsearch-stream", "version": env!("CARGO_PKG_VERSION")})
}

fn not_found(method: &str) -> RpcError {
    RpcError::new(
        200,
        Code::MethodNotFound,
        format!("method {method:?} is not served here"),
    )
}

/// The HTTP status 2026-07-28 gives each error code (none for an internal error).
fn modern_status(code: Code) -> u16 {
    match code {
        Code::MethodNotFound => 404,
        Code::Internal => 200,
        _ => 400,
    }
}

fn json_answer(status: u16, body: Vec<u8>) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", JSON_CONTENT_TYPE.to_string())],
        body: AnswerBody::Bytes(body),
    }
}

/// 202 with no body: a notification or response taken.
fn accepted() -> Answer {
    Answer {
        status: 202,
        headers: Vec::new(),
        body: AnswerBody::Bytes(Vec::new()),
    }
}
