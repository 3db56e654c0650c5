//! Who may use the service: the API key and the CORS policy, decided once per request
//! before any route runs. Both servers put this in front of every route.

use super::{ApiError, Auth, Cors, ErrorCode, JSON_CONTENT_TYPE};
use crate::http::Secret;

/// Why an access setting was refused at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("the API key is empty: give a key, or leave --api-key / DEEPSEARCH_API_KEY unset")]
    EmptyApiKey,
    #[error("--cors-origins / DEEPSEARCH_CORS_ORIGINS: {0}")]
    BadOrigin(String),
    #[error("--api-key-file / DEEPSEARCH_API_KEY_FILE: {0}")]
    KeyFile(String),
}

/// What [`Access::check`] needs of a request: its method, raw path and a few headers
/// (raw bytes, `None` when absent; the first one when repeated).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The path as received: not percent-decoded, no query.
    pub path: &'a str,
    pub authorization: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    /// `Access-Control-Request-Method`, present on CORS preflights.
    pub request_method: Option<&'a [u8]>,
}

/// A response given before (instead of) any route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyAnswer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl EarlyAnswer {
    /// A refusal of a request for `path`, in the protocol of its route (OpenAI's error
    /// object on `/v1`, so its clients read the message).
    fn refusal(path: &str, error: &ApiError, mut extra: Vec<(&'static str, String)>) -> Self {
        let format = super::wire::Format::for_path(path);
        let mut headers = vec![("content-type", JSON_CONTENT_TYPE.to_string())];
        headers.extend(error.headers());
        headers.append(&mut extra);
        EarlyAnswer {
            status: format.refusal_status(error),
            headers,
            body: format.error_body(error),
        }
    }
}

/// The API key and the CORS policy of a server.
#[derive(Debug, Clone, Default)]
pub struct Access {
    auth: Auth,
    cors: Cors,
}

impl Access {
    /// From `--api-key` and `--cors-origins` (`None`: CORS off).
    pub fn new(api_key: Option<Secret>, cors_origins: Option<&str>) -> Result<Self, AccessError> {
        Self::with_keys(api_key.into_iter().collect(), cors_origins)
    }

    /// From several API keys (repeated `--api-key`, `--api-key-file`; any of them
    /// passes, and each stream is scoped to its own) and `--cors-origins`.
    pub fn with_keys(
        api_keys: Vec<Secret>,
        cors_origins: Option<&str>,
    ) -> Result<Self, AccessError> {
        Ok(Access {
            auth: Auth::with_keys(api_keys)?,
            cors: cors_origins
                .map(Cors::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// False when neither a key nor CORS is configured: nothing to check, nothing to add.
    pub fn enabled(&self) -> bool {
        self.auth.enabled() || self.cors.enabled()
    }

    /// The answer to give instead of routing the request, if any: the preflight answer
    /// (CORS on; never needs the key), or a 401 for a request without the right key.
    /// Unknown paths get the 401 too, so the routes are not revealed to strangers.
    pub fn check(&self, head: &RequestHead<'_>) -> Option<EarlyAnswer> {
        let preflight = self.cors.enabled()
            && head.method.eq_ignore_ascii_case("OPTIONS")
            && head.origin.is_some()
            && head.request_method.is_some();
        if preflight {
            return Some(match self.cors.preflight_headers(head.origin) {
                Some(headers) => EarlyAnswer {
                    status: 204,
                    headers,
                    body: Vec::new(),
                },
                None => EarlyAnswer::refusal(
                    head.path,
                    &ApiError::new(
                        403,
                        ErrorCode::OriginNotAllowed,
                        None,
                        "cross-origin requests from this origin are not allowed",
                    ),
                    self.cors.response_headers(head.origin),
                ),
            });
        }
        if !self.auth.required_for(head.path) {
            return None;
        }
        let refused = self.auth.check(head.authorization).err()?;
        Some(EarlyAnswer::refusal(
            head.path,
            &refused,
            self.cors.response_headers(head.origin),
        ))
    }

    /// Headers to add to the route's response to a request from `origin`.
    pub fn response_headers(&self, origin: Option<&[u8]>) -> Vec<(&'static str, String)> {
        self.cors.response_headers(origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head<'a>(method: &'a str, path: &'a str) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            ..RequestHead::default()
        }
    }

    #[test]
    fn nothing_configured_lets_everything_through() {
        let open = Access::default();
        assert!(!open.enabled());
        let mut preflight = head("OPTIONS", "/deepsearch");
        preflight.origin = Some(b"https://a.example");
        preflight.request_method = Some(b"POST");
        assert_eq!(open.check(&preflight), None);
        assert!(open.response_headers(Some(b"https://a.example")).is_empty());
    }

    #[test]
    fn the_key_guards_every_path_but_the_public_ones() {
        let access = Access::new(Some(Secret::new("k")), None).unwrap();
        for path in ["/deepsearch", "/metrics", "/nope", "/bench/stream"] {
            let answer = access.check(&head("POST", path)).unwrap();
            assert_eq!(answer.status, 401);
            assert_eq!(
                answer.headers,
                [
                    ("content-type", "application/json".to_string()),
                    ("www-authenticate", "Bearer".to_string())
                ]
            );
            let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(body["error"]["field"].is_null());
        }
        assert_eq!(access.check(&head("GET", "/healthz")), None);
        let mut with_key = head("POST", "/deepsearch");
        with_key.authorization = Some(b"Bearer k");
        assert_eq!(access.check(&with_key), None);
    }

    #[test]
    fn preflights_need_no_key_and_refusals_carry_cors_headers() {
        let access = Access::new(Some(Secret::new("k")), Some("https://a.example")).unwrap();
        let mut preflight = head("OPTIONS", "/deepsearch");
        preflight.origin = Some(b"https://a.example");
        preflight.request_method = Some(b"POST");
        let answer = access.check(&preflight).unwrap();
        assert_eq!((answer.status, answer.body.len()), (204, 0));
        preflight.origin = Some(b"https://evil.example");
        let answer = access.check(&preflight).unwrap();
        assert_eq!(answer.status, 403);
        assert!(answer.headers.contains(&("vary", "origin".to_string())));
        let mut post = head("POST", "/deepsearch");
        post.origin = Some(b"https://a.example");
        let answer = access.check(&post).unwrap();
        assert_eq!(answer.status, 401);
        assert!(answer.headers.contains(&(
            "access-control-allow-origin",
            "https://a.example".to_string()
        )));
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Access::new(Some(Secret::new("")), None).unwrap_err();
        assert!(e.to_string().contains("DEEPSEARCH_API_KEY"));
        let e = Access::new(None, Some("nope")).unwrap_err();
        assert!(e.to_string().contains("--cors-origins"));
    }
}
