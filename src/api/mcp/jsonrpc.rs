//! JSON-RPC 2.0 as MCP uses it: one message per POST body, read into a [`Incoming`],
//! and the bytes of the responses, errors and notifications sent back.

use serde_json::{json, Map, Value};

/// Error codes of JSON-RPC and of MCP's HTTP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    Internal,
    /// The `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers disagree with the
    /// body (2026-07-28).
    HeaderMismatch,
    /// The request's protocol version is not served here (2026-07-28).
    UnsupportedProtocolVersion,
}

impl Code {
    pub fn number(self) -> i64 {
        match self {
            Code::ParseError => -32700,
            Code::InvalidRequest => -32600,
            Code::MethodNotFound => -32601,
            Code::InvalidParams => -32602,
            Code::Internal => -32603,
            Code::HeaderMismatch => -32020,
            Code::UnsupportedProtocolVersion => -32022,
        }
    }
}

/// A JSON-RPC error answer: the HTTP status it goes out with, its request id (`null`
/// when the request's could not be read) and its `error` object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub status: u16,
    // Boxed: a `Value` is large, and this is the error side of every result here.
    pub id: Box<Value>,
    pub code: Code,
    pub message: String,
    pub data: Option<Box<Value>>,
}

impl RpcError {
    pub fn new(status: u16, code: Code, message: impl Into<String>) -> Self {
        RpcError {
            status,
            id: Box::new(Value::Null),
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error, answering the request `id`.
    pub fn to(mut self, id: &Value) -> Self {
        self.id = Box::new(id.clone());
        self
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// The error message, as JSON.
    pub fn body(&self) -> Vec<u8> {
        let mut error = Map::new();
        error.insert("code".into(), self.code.number().into());
        error.insert("message".into(), self.message.clone().into());
        if let Some(data) = &self.data {
            error.insert("data".into(), (**data).clone());
        }
        let message = json!({"jsonrpc": "2.0", "id": self.id, "error": error});
        serde_json::to_vec(&message).unwrap_or_default()
    }
}

/// One message a client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request: it gets an answer.
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    /// A notification: acknowledged with 202, never answered.
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    /// The client's answer to a request of ours (we send none): acknowledged, dropped.
    Response,
}

impl Incoming {
    /// Reads one message. Batches are refused: MCP dropped them in 2025-06-18.
    pub fn parse(body: &[u8]) -> Result<Incoming, RpcError> {
        let bad = |message: String| RpcError::new(400, Code::InvalidRequest, message);
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            RpcError::new(400, Code::ParseError, format!("the body is not JSON: {e}"))
        })?;
        let mut obj = match value {
            Value::Object(obj) => obj,
            Value::Array(_) => {
                return Err(bad(
                    "JSON-RPC batches are not supported: send one message per request".into(),
                ))
            }
            _ => return Err(bad("a JSON-RPC message must be a JSON object".into())),
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(bad("\"jsonrpc\" must be \"2.0\"".into()));
        }
        let id = obj.remove("id");
        if let Some(id) = &id {
            let valid = id.is_string() || id.as_i64().is_some() || id.as_u64().is_some();
            if !valid {
                return Err(bad("\"id\" must be a string or an integer".into()));
            }
        }
        let params = match obj.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => {
                let e = RpcError::new(400, Code::InvalidParams, "\"params\" must be an object");
                return Err(e.to(id.as_ref().unwrap_or(&Value::Null)));
            }
        };
        match (obj.remove("method"), id) {
            (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request { id, method, params }),
            (Some(Value::String(method)), None) => Ok(Incoming::Notification { method, params }),
            (Some(_), id) => {
                let e = bad("\"method\" must be a string".into());
                Err(e.to(id.as_ref().unwrap_or(&Value::Null)))
            }
            (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => {
                Ok(Incoming::Response)
            }
            (None, _) => Err(bad("a JSON-RPC message needs a \"method\"".into())),
        }
    }
}

/// A result message.
pub fn response(id: &Value, result: Value) -> Vec<u8> {
    let message = json!({"jsonrpc": "2.0", "id": id, "result": result});
    serde_json::to_vec(&message).unwrap_or_default()
}

/// A notification message.
pub fn notification(method: &str, params: Value) -> Vec<u8> {
    let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
    serde_json::to_vec(&message).unwrap_or_default()
}

/// A message as one SSE event: `event: message` and one `data:` line (JSON text has no
/// raw line breaks). No `id:`: these streams cannot be resumed.
pub fn sse_event(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 24);
    frame.extend_from_slice(b"event: message\ndata: ");
    frame.extend_from_slice(message);
    frame.extend_from_slice(b"\n\n");
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let req = Incoming::parse(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert_eq!(
            req,
            Incoming::Request {
                id: json!(7),
                method: "ping".into(),
                params: Map::new()
            }
        );
        let note =
            Incoming::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(note, Incoming::Notification { .. }));
        let answer = Incoming::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(answer, Incoming::Response);
    }

    #[test]
    fn bad_messages_get_the_codes_json_rpc_names() {
        let code = |body: &[u8]| Incoming::parse(body).unwrap_err().code;
        assert_eq!(code(b"{"), Code::ParseError);
        assert_eq!(code(b"[]"), Code::InvalidRequest);
        assert_eq!(code(br#"{"id":1,"method":"ping"}"#), Code::InvalidRequest);
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":true,"method":"x"}"#),
            Code::InvalidRequest
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            Code::InvalidParams
        );
        let e = Incoming::parse(br#"{"jsonrpc":"2.0","id":1,"method":2}"#).unwrap_err();
        assert_eq!((e.code, *e.id), (Code::InvalidRequest, json!(1)));
    }

    #[test]
    fn errors_carry_their_id_and_data() {
        let e = RpcError::new(400, Code::UnsupportedProtocolVersion, "no")
            .to(&json!("r1"))
            .with_data(json!({"supported": ["2026-07-28"]}));
        let body: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": "r1", "error": {"code": -32022, "message": "no",
                "data": {"supported": ["2026-07-28"]}}})
        );
        assert_eq!(sse_event(b"{}"), b"event: message\ndata: {}\n\n");
    }
}
