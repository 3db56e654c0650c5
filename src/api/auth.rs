//! The optional API key (`--api-key`): which paths need it, and the check of an
//! `Authorization: Bearer <key>` header against it.

use subtle::{Choice, ConstantTimeEq};

use super::{AccessError, ApiError, ErrorCode};
use crate::http::Secret;

/// Paths served without the key: the health probe (load balancers and orchestrators
/// carry no credentials) and the web page's static shell, which holds no data and asks
/// for the key itself, since a browser cannot send a bearer token when it navigates.
pub const PUBLIC_PATHS: [&str; 2] = ["/healthz", "/"];

/// Whether requests must carry the API key, and the check that they do.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    key: Option<Secret>,
}

impl Auth {
    /// No key: every request passes. An empty key is refused rather than read as "no
    /// key", so a missing secret never silently turns authentication off.
    pub fn new(key: Option<Secret>) -> Result<Self, AccessError> {
        if key.as_ref().is_some_and(Secret::is_empty) {
            return Err(AccessError::EmptyApiKey);
        }
        Ok(Auth { key })
    }

    /// Whether a key is configured.
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    /// Whether a request for `path` (as received, not percent-decoded) must carry the key.
    pub fn required_for(&self, path: &str) -> bool {
        self.enabled() && !PUBLIC_PATHS.contains(&path)
    }

    /// Checks an `Authorization` header (its raw bytes, `None` when absent).
    ///
    /// ```
    /// use deepsearch_stream::api::Auth;
    /// use deepsearch_stream::http::Secret;
    /// let auth = Auth::new(Some(Secret::new("s3cret"))).unwrap();
    /// assert!(auth.check(Some(b"Bearer s3cret")).is_ok());
    /// assert_eq!(auth.check(Some(b"Bearer nope")).unwrap_err().status, 401);
    /// ```
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let Some(header) = authorization else {
            return Err(unauthorized(
                "an API key is required: send the header Authorization: Bearer <key>",
            ));
        };
        let Some(token) = bearer_token(Some(header)) else {
            return Err(unauthorized(
                "the Authorization header must be \"Bearer <key>\"",
            ));
        };
        if bool::from(same_secret(token, key.expose().as_bytes())) {
            Ok(())
        } else {
            Err(unauthorized("the API key is not valid"))
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` for any other.
pub fn bearer_token(header: Option<&[u8]>) -> Option<&[u8]> {
    let header = header?.trim_ascii();
    let (scheme, token) = match header.iter().position(|b| *b == b' ' || *b == b'\t') {
        Some(at) => (&header[..at], header[at..].trim_ascii()),
        None => (header, &b""[..]),
    };
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// `given == secret` in time that depends only on the secret's length: every byte of
/// the secret is compared, whatever the given token's length or first difference.
fn same_secret(given: &[u8], secret: &[u8]) -> Choice {
    let same_len = (given.len() as u64).ct_eq(&(secret.len() as u64));
    secret.iter().enumerate().fold(same_len, |same, (i, s)| {
        same & s.ct_eq(given.get(i).unwrap_or(&0))
    })
}

/// 401 `unauthorized`; [`ApiError::headers`] adds `WWW-Authenticate: Bearer`.
fn unauthorized(message: &str) -> ApiError {
    ApiError::new(401, ErrorCode::Unauthorized, None, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(Some(Secret::new("correct-horse"))).unwrap()
    }

    fn refusal(header: Option<&[u8]>) -> ApiError {
        auth().check(header).unwrap_err()
    }

    #[test]
    fn the_right_key_passes() {
        assert!(auth().check(Some(b"Bearer correct-horse")).is_ok());
        assert!(auth().check(Some(b"bearer  correct-horse ")).is_ok());
        assert!(auth().check(Some(b"BEARER\tcorrect-horse")).is_ok());
    }

    #[test]
    fn everything_else_is_401_with_the_challenge() {
        for (header, message) in [
            (None, "an API key is required"),
            (Some(&b"Bearer wrong-horse!!"[..]), "not valid"),
            (Some(b"Bearer correct-hors"), "not valid"),
            (Some(b"Bearer correct-horse2"), "not valid"),
            (Some(b"Bearer "), "Bearer <key>"),
            (Some(b"Bearer"), "Bearer <key>"),
            (Some(b"Basic Y29ycmVjdC1ob3JzZQ=="), "Bearer <key>"),
            (Some(b"correct-horse"), "Bearer <key>"),
            (Some(b"Bearer correct-horse\xff"), "not valid"),
        ] {
            let e = refusal(header);
            assert_eq!(
                (e.status, e.code.as_str(), e.field.as_deref()),
                (401, "unauthorized", None)
            );
            assert!(e.message.contains(message), "{header:?}: {}", e.message);
            assert!(
                !e.message.contains("correct-horse"),
                "the key is never echoed"
            );
            assert_eq!(e.headers(), [("www-authenticate", "Bearer".to_string())]);
        }
    }

    #[test]
    fn the_comparison_looks_at_every_byte_and_the_length() {
        let secret = b"abcdef";
        assert!(bool::from(same_secret(b"abcdef", secret)));
        assert!(!bool::from(same_secret(b"abcdeF", secret)));
        assert!(!bool::from(same_secret(b"Abcdef", secret)));
        assert!(!bool::from(same_secret(b"abcde", secret)), "a prefix");
        assert!(
            !bool::from(same_secret(b"abcdef\0", secret)),
            "padded with NUL"
        );
        assert!(!bool::from(same_secret(b"", secret)));
        assert!(!bool::from(same_secret(b"abcdef", b"")));
    }

    #[test]
    fn without_a_key_nothing_is_required() {
        let open = Auth::new(None).unwrap();
        assert!(!open.enabled() && !open.required_for("/deepsearch"));
        assert!(open.check(None).is_ok());
        assert!(auth().required_for("/metrics") && auth().required_for("/nope"));
        assert!(!auth().required_for("/healthz") && !auth().required_for("/"));
        assert!(
            auth().required_for("/%68ealthz"),
            "raw paths: no decoding around it"
        );
        assert!(matches!(
            Auth::new(Some(Secret::new(" \n"))),
            Err(AccessError::EmptyApiKey)
        ));
    }
}
