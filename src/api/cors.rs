//! Cross-origin access (`--cors-origins`): off unless configured, then the preflight
//! answer and the headers of every response, the same on both servers.

use super::AccessError;

/// Methods a cross-origin page may use.
pub const ALLOW_METHODS: &str = "GET, HEAD, POST";
/// Request headers a cross-origin page may send beyond the safelisted ones: the API key,
/// the JSON content type, the SSE resume header and the headers of MCP's HTTP transport
/// (a browser MCP client, such as the MCP Inspector).
pub const ALLOW_HEADERS: &str = "authorization, content-type, last-event-id, \
    mcp-protocol-version, mcp-session-id, mcp-method, mcp-name";
/// Response headers a cross-origin page may read beyond the safelisted ones (an MCP
/// client must read its session id).
pub const EXPOSE_HEADERS: &str = "retry-after, www-authenticate, mcp-session-id";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_SECS: u32 = 600;

/// Which origins may call the service from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers at all: browsers keep other origins out.
    #[default]
    Off,
    /// `*`: any origin.
    AnyOrigin,
    /// These origins (`scheme://host[:port]`, lowercase), compared exactly.
    Origins(Vec<String>),
}

impl Cors {
    /// `""` is off, `"*"` any origin, else a comma-separated list of origins.
    ///
    /// ```
    /// use deepsearch_stream::api::Cors;
    /// assert_eq!(Cors::parse("").unwrap(), Cors::Off);
    /// assert_eq!(Cors::parse(" * ").unwrap(), Cors::AnyOrigin);
    /// assert_eq!(
    ///     Cors::parse("https://a.example, http://B.example:8080/").unwrap(),
    ///     Cors::Origins(vec!["https://a.example".into(), "http://b.example:8080".into()])
    /// );
    /// assert!(Cors::parse("a.example").is_err());
    /// ```
    pub fn parse(spec: &str) -> Result<Self, AccessError> {
        let items: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(Cors::Off);
        }
        if items.contains(&"*") {
            return if items.len() == 1 {
                Ok(Cors::AnyOrigin)
            } else {
                Err(AccessError::BadOrigin(
                    "\"*\" cannot be combined with other origins".into(),
                ))
            };
        }
        items
            .into_iter()
            .map(normalize_origin)
            .collect::<Result<_, _>>()
            .map(Cors::Origins)
    }

    pub fn enabled(&self) -> bool {
        *self != Cors::Off
    }

    /// The value of `Access-Control-Allow-Origin` for a request from `origin`, if allowed.
    fn allow_origin(&self, origin: Option<&[u8]>) -> Option<String> {
        let origin = std::str::from_utf8(origin?).ok()?;
        match self {
            Cors::Off => None,
            Cors::AnyOrigin => Some("*".into()),
            Cors::Origins(allowed) => allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(origin))
                .then(|| origin.to_string()),
        }
    }

    /// Whether the answer depends on the `Origin` header (so caches must key on it).
    fn varies(&self) -> bool {
        matches!(self, Cors::Origins(_))
    }

    /// Headers for a response (not a preflight) to a request from `origin`.
    pub fn response_headers(&self, origin: Option<&[u8]>) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(allow) = self.allow_origin(origin) {
            headers.push(("access-control-allow-origin", allow));
            headers.push(("access-control-expose-headers", EXPOSE_HEADERS.into()));
        }
        if self.varies() {
            headers.push(("vary", "origin".into()));
        }
        headers
    }

    /// Headers of the answer to a preflight from `origin`; `None` when it is not allowed.
    pub fn preflight_headers(&self, origin: Option<&[u8]>) -> Option<Vec<(&'static str, String)>> {
        let allow = self.allow_origin(origin)?;
        let mut headers = vec![
            ("access-control-allow-origin", allow),
            ("access-control-allow-methods", ALLOW_METHODS.into()),
            ("access-control-allow-headers", ALLOW_HEADERS.into()),
            ("access-control-max-age", MAX_AGE_SECS.to_string()),
        ];
        if self.varies() {
            headers.push(("vary", "origin".into()));
        }
        Some(headers)
    }
}

/// `scheme://host[:port]` in lowercase, without a trailing `/`.
fn normalize_origin(raw: &str) -> Result<String, AccessError> {
    let origin = raw.strip_suffix('/').unwrap_or(raw).to_ascii_lowercase();
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let well_formed = rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    });
    if well_formed {
        Ok(origin)
    } else {
        Err(AccessError::BadOrigin(format!(
            "{raw:?} is not an origin like https://app.example or http://localhost:3000"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_sends_nothing() {
        let off = Cors::default();
        assert!(!off.enabled());
        assert!(off.response_headers(Some(b"https://a.example")).is_empty());
        assert_eq!(off.preflight_headers(Some(b"https://a.example")), None);
    }

    #[test]
    fn listed_origins_are_echoed_and_others_are_not() {
        let cors = Cors::parse("https://a.example").unwrap();
        let yes = cors.response_headers(Some(b"https://a.example"));
        assert_eq!(
            yes,
            [
                (
                    "access-control-allow-origin",
                    "https://a.example".to_string()
                ),
                ("access-control-expose-headers", EXPOSE_HEADERS.to_string()),
                ("vary", "origin".to_string()),
            ]
        );
        for other in [
            &b"https://b.example"[..],
            b"http://a.example",
            b"\xff",
            b"null",
        ] {
            assert_eq!(
                cors.response_headers(Some(other)),
                [("vary", "origin".to_string())]
            );
            assert_eq!(cors.preflight_headers(Some(other)), None);
        }
        assert_eq!(
            cors.response_headers(None),
            [("vary", "origin".to_string())]
        );
        let pre = cors.preflight_headers(Some(b"https://a.example")).unwrap();
        assert!(pre.contains(&("access-control-allow-headers", ALLOW_HEADERS.to_string())));
        assert!(pre.contains(&("access-control-allow-methods", ALLOW_METHODS.to_string())));
    }

    #[test]
    fn any_origin_is_a_star_without_vary() {
        let cors = Cors::parse("*").unwrap();
        let headers = cors.response_headers(Some(b"https://x.example"));
        assert_eq!(headers[0], ("access-control-allow-origin", "*".to_string()));
        assert!(!headers.iter().any(|(k, _)| *k == "vary"));
        assert!(
            cors.response_headers(None).is_empty(),
            "no Origin: not a CORS request"
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        for spec in [
            "*, https://a.example",
            "a.example",
            "https://a.example/path",
            "ftp://a",
            "https://",
        ] {
            assert!(Cors::parse(spec).is_err(), "{spec}");
        }
        assert_eq!(Cors::parse(" , ").unwrap(), Cors::Off);
    }
}
