//! The optional API key (`--api-key`): which paths need it, and the check of an
//! `Authorization: Bearer <key>` header against it.

use subtle::{Choice, ConstantTimeEq};

use super::{AccessError, ApiError, ErrorCode};
use crate::http::Secret;

/// Paths served without the key: the health probe (load balancers and orchestrators
/// carry no credentials) and the web page's static shell, which holds no data and asks
/// for the key itself, since a browser cannot send a bearer token when it navigates.
pub const PUBLIC_PATHS: [&str; 2] = ["/healthz", "/"];

/// Whether requests must carry an API key, and the check that they do. Several keys
/// may be valid at once (one per client, say): each stream is then scoped to the key
/// that started it (see [`Service::handle`](super::Service::handle)).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    keys: Vec<Secret>,
}

impl Auth {
    /// No key: every request passes. An empty key is refused rather than read as "no
    /// key", so a missing secret never silently turns authentication off.
    pub fn new(key: Option<Secret>) -> Result<Self, AccessError> {
        Self::with_keys(key.into_iter().collect())
    }

    /// Any of `keys` passes; none: every request passes. An empty key is refused.
    pub fn with_keys(keys: Vec<Secret>) -> Result<Self, AccessError> {
        if keys.iter().any(Secret::is_empty) {
            return Err(AccessError::EmptyApiKey);
        }
        Ok(Auth { keys })
    }

    /// Whether a key is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
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
        if self.keys.is_empty() {
            return Ok(());
        }
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
        // Every key is compared, whichever matches: the time says nothing of which.
        let valid = self.keys.iter().fold(Choice::from(0), |valid, key| {
            valid | same_secret(token, key.expose().as_bytes())
        });
        if bool::from(valid) {
            Ok(())
        } else {
            Err(unauthorized("the API key is not valid"))
        }
    }
}

/// The keys of an API key file: one per line; blank lines and lines starting with `#`
/// are skipped, spaces around a key are not part of it.
pub fn read_key_file(path: &std::path::Path) -> Result<Vec<Secret>, AccessError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AccessError::KeyFile(format!("{}: {e}", path.display())))?;
    let keys: Vec<Secret> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(Secret::from)
        .collect();
    if keys.is_empty() {
        return Err(AccessError::KeyFile(format!(
            "{}: no key in it (one key per line)",
            path.display()
        )));
    }
    Ok(keys)
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
    fn any_of_several_keys_passes() {
        let auth = Auth::with_keys(vec![Secret::new("k-one"), Secret::new("k-two")]).unwrap();
        assert!(auth.check(Some(b"Bearer k-one")).is_ok());
        assert!(auth.check(Some(b"Bearer k-two")).is_ok());
        assert_eq!(auth.check(Some(b"Bearer k-three")).unwrap_err().status, 401);
        assert!(matches!(
            Auth::with_keys(vec![Secret::new("k"), Secret::new("")]),
            Err(AccessError::EmptyApiKey)
        ));
    }

    #[test]
    fn key_files_hold_one_key_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "# clients\nk-one\n\n  k-two  \n").unwrap();
        let keys = read_key_file(&path).unwrap();
        let keys: Vec<&str> = keys.iter().map(Secret::expose).collect();
        assert_eq!(keys, ["k-one", "k-two"]);
        std::fs::write(&path, "# none\n\n").unwrap();
        assert!(matches!(read_key_file(&path), Err(AccessError::KeyFile(_))));
        let missing = read_key_file(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
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
