//! The parts of a search request outside its body: a `GET`'s query string, read as the
//! POST body, and the resume point (`Last-Event-ID`, or `last_event_id` in the query).

use super::{ApiError, ErrorCode};
use crate::replay::StreamKey;

/// Largest event number accepted (ids are `<key>.1`, `<key>.2`, ... per stream).
pub const MAX_LAST_EVENT_ID: u64 = i64::MAX as u64;

/// Where a client resumes: the stream's key and the last event number it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// `None` when the id carries no key of the shape this server writes (a bare number,
    /// a stranger's guess): such a resume finds nothing, as for an unknown stream.
    pub key: Option<StreamKey>,
    pub after: u64,
}

/// The resume point: the `Last-Event-ID` header, else the `last_event_id` query parameter
/// of `query` (the field named in errors says which). `None`: not a resume. An id is
/// `<key>.<n>`; its number must be a whole number (400 otherwise).
pub fn last_event_id(
    header: Option<&str>,
    query: Option<&str>,
) -> Result<Option<ResumePoint>, ApiError> {
    let (field, raw) = match (header, query.and_then(query_last_event_id)) {
        (Some(h), _) => ("Last-Event-ID", h.to_string()),
        (None, Some(q)) => ("last_event_id", q),
        (None, None) => return Ok(None),
    };
    let (key, number) = match raw.rsplit_once('.') {
        Some((key, number)) => (StreamKey::parse(key), number),
        None => (None, raw.as_str()),
    };
    let valid =
        !number.is_empty() && number.len() <= 19 && number.bytes().all(|b| b.is_ascii_digit());
    match number.parse::<u64>() {
        Ok(after) if valid && after <= MAX_LAST_EVENT_ID => Ok(Some(ResumePoint { key, after })),
        _ => Err(ApiError::new(
            400,
            ErrorCode::InvalidLastEventId,
            Some(field),
            format!(
                "must be an event id this server sent (<key>.<n>, n from 0 to \
                 {MAX_LAST_EVENT_ID}), got {:?}",
                raw.chars().take(40).collect::<String>()
            ),
        )),
    }
}

fn query_last_event_id(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "last_event_id" || k == "lastEventId")
        .map(|(_, v)| v.into_owned())
}

/// A `GET` query string as the JSON body the POST route takes, so one parser checks both:
/// numbers and booleans are read as such, `stream_mode` may be a name or a JSON object,
/// `search_engines` is comma-separated. The first of repeated parameters counts;
/// `last_event_id` is left to [`last_event_id`].
pub fn query_to_body(query: &str) -> Vec<u8> {
    let mut obj = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if obj.contains_key(key.as_ref()) || key == "last_event_id" || key == "lastEventId" {
            continue;
        }
        let value = match key.as_ref() {
            "max_loop" | "maxLoop" => serde_json::from_str::<serde_json::Number>(&value)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|_| value.as_ref().into()),
            "stream" => match value.as_ref() {
                "true" => true.into(),
                "false" => false.into(),
                other => other.into(),
            },
            "stream_mode" | "streamMode" if value.trim_start().starts_with('{') => {
                serde_json::from_str(&value).unwrap_or_else(|_| value.as_ref().into())
            }
            "search_engines" | "searchEngines" => value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(serde_json::Value::from)
                .collect(),
            _ => value.as_ref().into(),
        };
        obj.insert(key.into_owned(), value);
    }
    serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(after: u64) -> Option<ResumePoint> {
        Some(ResumePoint { key: None, after })
    }

    #[test]
    fn last_event_id_from_header_or_query() {
        let key = "00112233445566778899aabbccddeeff";
        assert_eq!(last_event_id(None, None), Ok(None));
        assert_eq!(
            last_event_id(Some(&format!("{key}.7")), Some("last_event_id=3")),
            Ok(Some(ResumePoint {
                key: StreamKey::parse(key),
                after: 7
            }))
        );
        assert_eq!(
            last_event_id(None, Some("query=q&last_event_id=3")),
            Ok(bare(3))
        );
        // A bare number or a key of the wrong shape: valid, but no key.
        assert_eq!(last_event_id(Some("0"), None), Ok(bare(0)));
        assert_eq!(last_event_id(Some("abc.4"), None), Ok(bare(4)));
        assert_eq!(last_event_id(Some("1.5"), None), Ok(bare(5)));
        assert_eq!(last_event_id(Some(&format!("{key}x.4")), None), Ok(bare(4)));
        for bad in [
            "",
            "-1",
            "+1",
            "abc",
            " 1",
            "00112233445566778899aabbccddeeff.",
            "00112233445566778899aabbccddeeff.x",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            let e = last_event_id(Some(bad), None).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (400, "invalid_last_event_id"),
                "{bad:?}"
            );
            assert_eq!(e.field.as_deref(), Some("Last-Event-ID"));
        }
        let e = last_event_id(None, Some("last_event_id=x")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("last_event_id"));
    }

    #[test]
    fn query_strings_become_the_post_body() {
        let body = query_to_body(
            "query=What+is%20Tokio%3F&request_id=r1&max_loop=2&stream=false\
             &stream_mode=%7B%22mode%22%3A%22token%22%2C%22token%22%3A4%7D\
             &search_engines=local,+searxng&last_event_id=3&query=second",
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"query": "What is Tokio?", "request_id": "r1", "max_loop": 2,
                "stream": false, "stream_mode": {"mode": "token", "token": 4},
                "search_engines": ["local", "searxng"]})
        );
        let value: serde_json::Value =
            serde_json::from_slice(&query_to_body("max_loop=three&stream=yes")).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"max_loop": "three", "stream": "yes"})
        );
    }
}
