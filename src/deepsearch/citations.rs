//! Checks a model's citations against the sources they name.
//!
//! A model can cite a real, retrieved source that does not say what the sentence
//! claims. Each cited sentence is compared with the text of the source it cites
//! (lexical support: the share of the sentence's key terms that the source holds); an
//! unsupported citation moves to the source that supports the sentence best, or is
//! dropped when none does. The verdicts go into `final` as `citations`.

use std::collections::HashSet;

use serde::Serialize;

use super::offline::text::{document_terms, term_keys};
use crate::search::Document;

/// Share of a sentence's key terms its source must hold to support it. Lexical: a
/// paraphrase keeps most of the nouns and names, a wrong source shares few of them.
pub const SUPPORT_THRESHOLD: f64 = 0.5;

/// The verdict on one citation the model wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CitationCheck {
    /// The source number the model cited.
    pub id: usize,
    /// True when that source supports the sentence.
    pub supported: bool,
    /// Share (0–1) of the sentence's key terms found in the cited source.
    pub score: f64,
    /// The source the citation was moved to, when it was unsupported and another
    /// source supports the sentence; `None` when kept or dropped.
    pub moved_to: Option<usize>,
}

/// The checker for one answer, fed the (already range-filtered) model text.
///
/// ```
/// use deepsearch_stream::deepsearch::citations::CitationChecker;
/// use deepsearch_stream::search::Document;
/// let doc = |t: &str, c: &str| Document {
///     title: t.into(), url: String::new(), snippet: String::new(), content: c.into(), score: 1.0,
/// };
/// let docs = vec![
///     doc("Go", "Go has goroutines and channels."),
///     doc("Tokio", "Tokio is an asynchronous runtime for Rust."),
/// ];
/// let mut c = CitationChecker::new(docs);
/// let mut out = c.push("Tokio is an asynchronous Rust runtime [1]. ");
/// out.push_str(&c.push("Go has goroutines [1]."));
/// out.push_str(&c.finish());
/// assert_eq!(out, "Tokio is an asynchronous Rust runtime [2]. Go has goroutines [1].");
/// assert_eq!(c.checks()[0].moved_to, Some(2));
/// assert!(c.checks()[1].supported);
/// ```
#[derive(Debug)]
pub struct CitationChecker {
    docs: Vec<HashSet<String>>,
    held: String,
    checks: Vec<CitationCheck>,
}

impl CitationChecker {
    /// A checker for an answer over `docs`, numbered from 1.
    pub fn new(docs: Vec<Document>) -> Self {
        let docs = docs.iter().map(document_terms).collect();
        Self {
            docs,
            held: String::new(),
            checks: Vec::new(),
        }
    }

    /// Adds streamed text; returns the text whose sentences are complete and checked.
    pub fn push(&mut self, chunk: &str) -> String {
        self.held.push_str(chunk);
        let Some(end) = complete_prefix(&self.held) else {
            return String::new();
        };
        let ready: String = self.held.drain(..end).collect();
        self.check_text(&ready)
    }

    /// Checks and returns whatever is still held, at the end of the stream.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.held);
        self.check_text(&rest)
    }

    /// The verdicts so far, in the order the citations appeared.
    pub fn checks(&self) -> &[CitationCheck] {
        &self.checks
    }

    fn check_text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for cut in sentence_cuts(text).into_iter().chain([text.len()]) {
            out.push_str(&self.check_sentence(&text[last..cut]));
            last = cut;
        }
        out
    }

    /// Rewrites the markers of one sentence (a sentence's markers may trail its period).
    fn check_sentence(&mut self, sentence: &str) -> String {
        let markers = find_markers(sentence);
        if markers.is_empty() {
            return sentence.to_string();
        }
        let mut claim = String::new();
        let mut last = 0;
        for m in &markers {
            claim.push_str(&sentence[last..m.start]);
            last = m.end;
        }
        claim.push_str(&sentence[last..]);
        let terms: HashSet<String> = term_keys(&claim).into_iter().collect();
        let support = |doc: usize| -> f64 {
            if terms.is_empty() {
                return 1.0;
            }
            let held = self
                .docs
                .get(doc)
                .map_or(0, |d| terms.intersection(d).count());
            held as f64 / terms.len() as f64
        };
        let best = (0..self.docs.len()).map(|d| (d, support(d))).fold(
            None::<(usize, f64)>,
            |acc, (d, s)| match acc {
                Some((_, bs)) if bs >= s => acc,
                _ => Some((d, s)),
            },
        );

        let mut out = String::with_capacity(sentence.len());
        let mut last = 0;
        for m in &markers {
            let mut kept: Vec<usize> = Vec::new();
            for &id in &m.ids {
                let score = support(id - 1);
                let supported = score >= SUPPORT_THRESHOLD;
                let moved_to = match best {
                    Some((d, s)) if !supported && s >= SUPPORT_THRESHOLD => Some(d + 1),
                    _ => None,
                };
                self.checks.push(CitationCheck {
                    id,
                    supported,
                    score: (score * 1000.0).round() / 1000.0,
                    moved_to,
                });
                if let Some(n) = if supported { Some(id) } else { moved_to } {
                    if !kept.contains(&n) {
                        kept.push(n);
                    }
                }
            }
            let before = &sentence[last..m.start];
            if kept.is_empty() {
                out.push_str(before.trim_end_matches([' ', '\t']));
            } else {
                out.push_str(before);
                let ids: Vec<String> = kept.iter().map(usize::to_string).collect();
                out.push('[');
                out.push_str(&ids.join(", "));
                out.push(']');
            }
            last = m.end;
        }
        out.push_str(&sentence[last..]);
        out
    }
}

struct Marker {
    start: usize,
    end: usize,
    ids: Vec<usize>,
}

/// The `[n]` and `[n, m]` markers of `text` (the citation filter's output form).
fn find_markers(text: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find('[').map(|i| i + from) {
        let Some(close) = text[open..].find(']').map(|i| i + open) else {
            break;
        };
        let ids: Option<Vec<usize>> = text[open + 1..close]
            .split(',')
            .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
            .collect();
        match ids {
            Some(ids) if !ids.is_empty() => {
                out.push(Marker {
                    start: open,
                    end: close + 1,
                    ids,
                });
                from = close + 1;
            }
            _ => from = open + 1,
        }
    }
    out
}

/// Length of the prefix of `held` made of finished sentences.
fn complete_prefix(held: &str) -> Option<usize> {
    sentence_cuts(held).last().copied()
}

/// Where the sentences of `text` begin: after a sentence end, the whitespace and
/// markers following it (a marker may trail its period), where the next sentence's
/// first character is. Decided from what precedes each position only, so text cut at
/// one of them and checked in pieces gives the same sentences as checked whole.
fn sentence_cuts(text: &str) -> Vec<usize> {
    let held = text;
    let mut cuts = Vec::new();
    let mut prev_end = false;
    let mut in_marker = false;
    for (i, c) in held.char_indices() {
        match c {
            '.' | '!' | '?' | '。' | '！' | '？' | '\n' => prev_end = true,
            '[' => in_marker = true,
            ']' => in_marker = false,
            c if c.is_whitespace() => {}
            _ if in_marker => {}
            _ => {
                if prev_end && i > 0 && held[..i].ends_with(char::is_whitespace) {
                    cuts.push(i);
                }
                prev_end = false;
            }
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: &str, content: &str) -> Document {
        Document {
            title: title.into(),
            url: String::new(),
            snippet: String::new(),
            content: content.into(),
            score: 1.0,
        }
    }

    fn check_all(docs: Vec<Document>, chunks: &[&str]) -> (String, Vec<CitationCheck>) {
        let mut c = CitationChecker::new(docs);
        let mut out: String = chunks.iter().map(|x| c.push(x)).collect();
        out.push_str(&c.finish());
        (out, c.checks().to_vec())
    }

    #[test]
    fn unsupported_citation_without_a_better_source_is_dropped() {
        let docs = vec![doc("Bread", "Bake bread with flour, water and yeast.")];
        let (text, checks) = check_all(
            docs,
            &["Saturn has many moons [1]. Bread needs flour and yeast [1]."],
        );
        assert_eq!(
            text,
            "Saturn has many moons. Bread needs flour and yeast [1]."
        );
        assert_eq!(checks.len(), 2);
        assert!(!checks[0].supported && checks[0].moved_to.is_none());
        assert!(checks[1].supported && checks[1].score >= SUPPORT_THRESHOLD);
    }

    #[test]
    fn streaming_in_any_split_gives_the_whole_text_result() {
        let docs = vec![
            doc("Moons", "Saturn has many moons, Titan the largest."),
            doc("Bread", "Bake bread with flour, water and yeast."),
        ];
        let text = "Bread needs flour and yeast [1]. Saturn has many moons. [2] Done";
        let (whole, _) = check_all(docs.clone(), &[text]);
        assert_eq!(
            whole,
            "Bread needs flour and yeast [2]. Saturn has many moons. [1] Done"
        );
        for i in 1..text.len() {
            let (a, b) = text.split_at(i);
            assert_eq!(check_all(docs.clone(), &[a, b]).0, whole, "split at {i}");
        }
    }

    #[test]
    fn lists_keep_supported_ids_once() {
        let docs = vec![
            doc("A", "alpha beta gamma"),
            doc("B", "alpha beta gamma delta"),
        ];
        let (text, checks) = check_all(docs, &["Alpha beta gamma [1, 2]."]);
        assert_eq!(text, "Alpha beta gamma [1, 2].");
        assert!(checks.iter().all(|c| c.supported));
        assert_eq!(complete_prefix("One. [1] Two"), Some(9));
        assert_eq!(complete_prefix("One. [1] "), None);
    }
}
