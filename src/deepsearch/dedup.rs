//! Recognizing the same document found twice: by normalized URL, and by content.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use reqwest::Url;

use crate::search::Document;

/// Query parameters that track the click rather than name the page.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "rb_clickid",
    "s_cid",
    "ref_src",
    "spm",
];

/// The form two URLs of the same page share: lowercase scheme and host, no `www.`, no
/// default port, no `utm_*` or other tracking parameters, the remaining query parameters
/// sorted, and no trailing slash on a non-root path. The fragment stays: in a local
/// corpus it names a section, a document of its own. Text that does not parse as a URL
/// is only trimmed.
///
/// ```
/// use deepsearch_stream::deepsearch::normalize_url;
/// assert_eq!(
///     normalize_url("HTTPS://WWW.Example.com:443/a/?b=2&utm_source=x&a=1#top"),
///     "https://example.com/a?a=1&b=2#top"
/// );
/// assert_eq!(normalize_url("file:///tmp/x.md#intro"), "file:///tmp/x.md#intro");
/// ```
pub fn normalize_url(raw: &str) -> String {
    let raw = raw.trim();
    let Ok(mut url) = Url::parse(raw) else {
        return raw.to_string();
    };
    if !matches!(url.scheme(), "http" | "https") {
        return url.to_string();
    }
    if let Some(host) = url.host_str() {
        let host = host.to_ascii_lowercase();
        if let Some(bare) = host.strip_prefix("www.") {
            if !bare.is_empty() {
                let _ = url.set_host(Some(bare));
            }
        }
    }
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !k.starts_with("utm_") && !TRACKING_PARAMS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let path = url.path().to_string();
    if path.len() > 1 && path.ends_with('/') {
        url.set_path(path.trim_end_matches('/'));
    }
    url.to_string()
}

/// A fingerprint of what a document says: its text with case, punctuation and spacing
/// folded. `None` when there is too little text to tell two documents apart by it.
fn content_key(doc: &Document) -> Option<u64> {
    let folded: String = doc
        .text()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    if folded.chars().count() < 40 {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    folded.hash(&mut h);
    Some(h.finish())
}

/// Remembers every document accepted so far in a search.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    urls: HashSet<String>,
    contents: HashSet<u64>,
}

impl Seen {
    /// True (and remembered) when `doc` is neither a URL nor a content seen before.
    pub fn accept(&mut self, doc: &Document) -> bool {
        let url = (!doc.url.trim().is_empty()).then(|| normalize_url(&doc.url));
        let content = content_key(doc);
        if url.as_ref().is_some_and(|u| self.urls.contains(u))
            || content.is_some_and(|c| self.contents.contains(&c))
        {
            return false;
        }
        self.urls.extend(url);
        self.contents.extend(content);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(url: &str, content: &str) -> Document {
        Document {
            title: String::new(),
            url: url.into(),
            snippet: String::new(),
            content: content.into(),
            score: 0.0,
        }
    }

    #[test]
    fn url_forms_that_name_one_page() {
        let same = [
            "https://example.com/page?id=3",
            "https://www.example.com/page?id=3",
            "HTTPS://EXAMPLE.COM/page/?id=3",
            "https://example.com/page?utm_medium=email&id=3",
            "https://example.com/page?id=3&fbclid=abc",
            "https://example.com:443/page?id=3&gclid=1",
        ];
        for u in same {
            assert_eq!(normalize_url(u), "https://example.com/page?id=3", "{u}");
        }
        assert_ne!(
            normalize_url("https://example.com/page?id=3"),
            normalize_url("https://example.com/page?id=4")
        );
        assert_ne!(
            normalize_url("http://example.com/Page"),
            normalize_url("http://example.com/page"),
            "paths are case-sensitive"
        );
        assert_ne!(
            normalize_url("https://docs.python.org/3/library/json.html#json.load"),
            normalize_url("https://docs.python.org/3/library/json.html#json.dump"),
            "sections of one page are documents of their own"
        );
        assert_eq!(normalize_url("https://www./x"), "https://www./x");
        assert_eq!(normalize_url("  not a url "), "not a url");
    }

    #[test]
    fn seen_by_url_or_content() {
        let mut seen = Seen::default();
        let body = "Tokio is an asynchronous runtime for the Rust programming language.";
        assert!(seen.accept(&doc("https://tokio.rs/?utm_source=a", body)));
        assert!(!seen.accept(&doc("https://www.tokio.rs/", "other text")));
        let mirrored = "TOKIO is an asynchronous runtime, for the Rust programming-language!";
        assert!(!seen.accept(&doc("https://mirror.example/tokio", mirrored)));
        assert!(seen.accept(&doc("https://docs.rs/tokio", "Short.")));
        assert!(
            seen.accept(&doc("https://docs.rs/other", "Short.")),
            "too short to compare"
        );
        assert!(seen.accept(&doc("", "")));
    }
}
