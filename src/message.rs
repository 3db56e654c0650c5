//! The message envelope every stream carries: `{"type", "data", "requestId", "timestamp"}`,
//! plus the optional agent-stream keys of the seed's `Printer` (`messageId`, `isFinal`,
//! `digitalEmployee`), written only when given.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::json_compat::to_python_json;

/// One message, borrowed from the producer; `data` is anything serde can write.
///
/// ```
/// use deepsearch_stream::message::Envelope;
/// let env = Envelope::new("status", &"开始搜索...", "req-1").at(1700000000.5);
/// assert_eq!(
///     env.to_json().unwrap(),
///     r#"{"type": "status", "data": "开始搜索...", "requestId": "req-1", "timestamp": 1700000000.5}"#
/// );
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<'a, D: Serialize + ?Sized> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub data: &'a D,
    #[serde(rename = "requestId")]
    pub request_id: &'a str,
    /// Seconds since the Unix epoch, like Python's `time.time()`.
    pub timestamp: f64,
    #[serde(rename = "messageId", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    #[serde(rename = "isFinal", skip_serializing_if = "Option::is_none")]
    pub is_final: Option<bool>,
    #[serde(rename = "digitalEmployee", skip_serializing_if = "Option::is_none")]
    pub digital_employee: Option<&'a str>,
}

impl<'a, D: Serialize + ?Sized> Envelope<'a, D> {
    /// An envelope stamped with the current time.
    pub fn new(kind: &'a str, data: &'a D, request_id: &'a str) -> Self {
        Envelope {
            kind,
            data,
            request_id,
            timestamp: unix_now(),
            message_id: None,
            is_final: None,
            digital_employee: None,
        }
    }

    /// Overrides the timestamp (tests, replays).
    pub fn at(mut self, timestamp: f64) -> Self {
        self.timestamp = timestamp;
        self
    }

    pub fn message_id(mut self, id: Option<&'a str>) -> Self {
        self.message_id = id;
        self
    }

    pub fn is_final(mut self, is_final: Option<bool>) -> Self {
        self.is_final = is_final;
        self
    }

    pub fn digital_employee(mut self, who: Option<&'a str>) -> Self {
        self.digital_employee = who;
        self
    }

    /// Appends the JSON text, as Python's `json.dumps(..., ensure_ascii=False)` writes it.
    pub fn write_json(&self, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        to_python_json(self, buf)
    }

    /// The JSON text as a `String`.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut buf = Vec::with_capacity(128);
        self.write_json(&mut buf)?;
        // serde_json only ever writes UTF-8.
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// The `data` of an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorData<'a> {
    pub message: &'a str,
    pub code: &'a str,
}

/// Seconds since the Unix epoch as a float, like Python's `time.time()`.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_keys_only_when_given() {
        let data = serde_json::json!({"k": [1, 2]});
        let plain = Envelope::new("result", &data, "r")
            .at(1.25)
            .to_json()
            .unwrap();
        assert_eq!(
            plain,
            r#"{"type": "result", "data": {"k": [1, 2]}, "requestId": "r", "timestamp": 1.25}"#
        );
        let full = Envelope::new("result", &data, "r")
            .at(2.0)
            .message_id(Some("m-1"))
            .is_final(Some(true))
            .digital_employee(Some("搜索员"))
            .to_json()
            .unwrap();
        assert_eq!(
            full,
            r#"{"type": "result", "data": {"k": [1, 2]}, "requestId": "r", "timestamp": 2.0, "messageId": "m-1", "isFinal": true, "digitalEmployee": "搜索员"}"#
        );
    }

    #[test]
    fn error_data_shape() {
        let err = ErrorData {
            message: "boom",
            code: "timeout",
        };
        let json = Envelope::new("error", &err, "r")
            .at(3.0)
            .is_final(Some(true))
            .to_json()
            .unwrap();
        assert_eq!(
            json,
            r#"{"type": "error", "data": {"message": "boom", "code": "timeout"}, "requestId": "r", "timestamp": 3.0, "isFinal": true}"#
        );
    }

    #[test]
    fn timestamp_is_now() {
        let t = unix_now();
        assert!(t > 1.7e9 && t < 1e10, "{t}");
    }
}
