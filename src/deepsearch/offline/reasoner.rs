//! Rule-based sufficiency check: do the documents found so far cover the
//! question well enough to answer it?

use std::cmp::Ordering;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::text::{key_phrases, key_terms, term_key, term_keys};
use crate::search::Document;

/// Share of the query's key terms that the top documents must contain for
/// [`assess`] to call the question answerable. At 0.7 a question of four or
/// more terms may miss one (documents word things differently: "2024" vs
/// "this year"), while a two- or three-term question has no term to spare.
pub const ANSWER_COVERAGE: f64 = 0.7;

/// How many documents (by score) are looked at: an answer is built from the
/// best few, so a term found only in the 20th hit does not count.
pub const ASSESS_TOP_K: usize = 5;

/// The reasoner's verdict on one round.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::assess;
/// let a = assess("rust", &[]);
/// assert!(!a.is_answer);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// True when the documents are good enough to write the answer now.
    pub is_answer: bool,
    /// Fraction (0.0–1.0) of the query's key terms found in the top documents.
    pub coverage: f64,
    /// Key terms of the query not found, in query order.
    pub missing_terms: Vec<String>,
    /// A different query worth searching next, when not answerable yet.
    pub rewrite_query: Option<String>,
    /// One line for logs and progress messages.
    pub reason: String,
}

/// Checks how well `docs` cover `query`.
///
/// Looks at the [`ASSESS_TOP_K`] best documents by score; a key term counts
/// as covered when it (after light plural folding) occurs in a document's
/// title, snippet or content. `is_answer` is `coverage >= ANSWER_COVERAGE`
/// with at least one document. A query without key terms counts as fully
/// covered by any document, since there is nothing left to look for.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::assess;
/// use deepsearch_stream::search::Document;
/// let doc = Document {
///     title: "Tokio".into(),
///     url: "https://tokio.rs".into(),
///     snippet: String::new(),
///     content: "Tokio is an async runtime for Rust.".into(),
///     score: 1.0,
/// };
/// let a = assess("rust async runtime", &[doc]);
/// assert!(a.is_answer);
/// assert_eq!(a.coverage, 1.0);
/// ```
pub fn assess(query: &str, docs: &[Document]) -> Assessment {
    let terms = key_terms(query);
    let top = top_documents(docs, ASSESS_TOP_K);
    let covered = term_coverage(&terms, top.iter().copied());
    let hits = covered.iter().filter(|c| **c).count();
    let missing: Vec<String> = terms
        .iter()
        .zip(&covered)
        .filter(|(_, c)| !**c)
        .map(|(t, _)| t.clone())
        .collect();
    let coverage = if terms.is_empty() {
        1.0
    } else {
        hits as f64 / terms.len() as f64
    };
    let is_answer = !docs.is_empty() && coverage >= ANSWER_COVERAGE;

    let rewrite_query = if is_answer || terms.is_empty() {
        None
    } else {
        Some(rewrite(
            query,
            &missing,
            terms
                .iter()
                .zip(&covered)
                .find(|(_, c)| **c)
                .map(|(t, _)| t),
        ))
    };

    let reason = if docs.is_empty() {
        "no documents retrieved".to_string()
    } else if terms.is_empty() {
        "the query has no key terms; any document is as good as another".to_string()
    } else {
        let mut r = format!(
            "top {} documents cover {hits}/{} key terms ({:.0}%, need {:.0}%)",
            top.len(),
            terms.len(),
            coverage * 100.0,
            ANSWER_COVERAGE * 100.0
        );
        if !missing.is_empty() {
            r.push_str("; missing: ");
            r.push_str(&missing.join(", "));
        }
        r
    };

    Assessment {
        is_answer,
        coverage,
        missing_terms: missing,
        rewrite_query,
        reason,
    }
}

/// The missing phrases first (so engines weigh them), then one covered term
/// to keep the topic; with nothing covered, the query's key phrases alone.
fn rewrite(query: &str, missing: &[String], anchor: Option<&String>) -> String {
    let missing_keys: HashSet<String> = missing.iter().map(|t| term_key(t)).collect();
    let phrases = key_phrases(query);
    let Some(anchor) = anchor else {
        return phrases.join(" ");
    };
    let mut parts: Vec<&str> = phrases
        .iter()
        .filter(|p| term_keys(p).iter().any(|k| missing_keys.contains(k)))
        .map(String::as_str)
        .collect();
    if !parts
        .iter()
        .any(|p| term_keys(p).contains(&term_key(anchor)))
    {
        parts.push(anchor);
    }
    parts.join(" ")
}

/// Document indexes best first by score; ties (and NaN scores, ranked
/// last) keep input order so the ranking is deterministic.
pub(crate) fn rank_order(docs: &[Document]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..docs.len()).collect();
    idx.sort_by(|&a, &b| cmp_score(docs[b].score, docs[a].score).then(a.cmp(&b)));
    idx
}

/// The `k` best documents by score, per [`rank_order`].
pub(crate) fn top_documents(docs: &[Document], k: usize) -> Vec<&Document> {
    rank_order(docs)
        .into_iter()
        .take(k)
        .map(|i| &docs[i])
        .collect()
}

fn cmp_score(a: f64, b: f64) -> Ordering {
    let fix = |x: f64| if x.is_nan() { f64::NEG_INFINITY } else { x };
    fix(a).total_cmp(&fix(b))
}

/// For each of `terms`, whether any of `docs` mentions it.
pub(crate) fn term_coverage<'a>(
    terms: &[String],
    docs: impl Iterator<Item = &'a Document>,
) -> Vec<bool> {
    let mut present: HashSet<String> = HashSet::new();
    for doc in docs {
        for field in [&doc.title, &doc.snippet, &doc.content] {
            present.extend(term_keys(field));
        }
    }
    terms
        .iter()
        .map(|t| present.contains(&term_key(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: &str, content: &str, score: f64) -> Document {
        Document {
            title: title.into(),
            url: String::new(),
            snippet: String::new(),
            content: content.into(),
            score,
        }
    }

    #[test]
    fn coverage_counts_terms_in_top_documents() {
        let docs = [
            doc("Rust", "Rust has a borrow checker.", 2.0),
            doc("Go", "Go has goroutines.", 1.0),
        ];
        let a = assess("rust borrow checker lifetimes", &docs);
        assert_eq!(a.coverage, 0.75);
        assert!(a.is_answer);
        assert_eq!(a.missing_terms, ["lifetimes"]);
        assert_eq!(a.rewrite_query, None);
        let b = assess("rust goroutines lifetimes", &docs);
        assert!((b.coverage - 2.0 / 3.0).abs() < 1e-12);
        assert!(!b.is_answer);
        assert_eq!(b.rewrite_query.as_deref(), Some("lifetimes rust"));
    }

    #[test]
    fn only_top_k_documents_count() {
        let mut docs: Vec<Document> = (0..ASSESS_TOP_K)
            .map(|i| doc("filler", "nothing here", 10.0 + i as f64))
            .collect();
        docs.push(doc("late", "zebra", 1.0));
        assert_eq!(assess("zebra", &docs).coverage, 0.0);
        docs.last_mut().unwrap().score = 100.0;
        assert_eq!(assess("zebra", &docs).coverage, 1.0);
    }

    #[test]
    fn plurals_and_chinese_match() {
        let docs = [doc(
            "",
            "Vector databases store embeddings. 北京是中国的首都。",
            f64::NAN,
        )];
        assert_eq!(assess("vector database embedding", &docs).coverage, 1.0);
        assert_eq!(assess("中国的首都是哪里？", &docs).coverage, 1.0);
    }

    #[test]
    fn empty_inputs() {
        let a = assess("", &[]);
        assert!(!a.is_answer);
        assert_eq!(a.rewrite_query, None);
        let b = assess("rust tokio", &[]);
        assert_eq!(b.coverage, 0.0);
        assert_eq!(b.rewrite_query.as_deref(), Some("rust tokio"));
        assert_eq!(b.reason, "no documents retrieved");
        assert!(assess("what is it", &[doc("a", "b", 0.0)]).is_answer);
    }
}
