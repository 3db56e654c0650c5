//! Extractive answer builder: picks the document sentences that best answer
//! the question and cites each one, so the offline path still produces a
//! grounded, cited answer.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::prose::{looks_like_code, sentences, unwrap_lines};
use super::reasoner::rank_order;
use super::synonyms::related;
use super::text::{
    document_terms, key_terms, named_symbols, term_key, term_keys, word_pieces, WordPieces,
};
use crate::search::Document;

/// The answer text when no retrieved sentence is relevant to the question.
pub const NO_ANSWER: &str = "No answer found in the retrieved documents.";

/// BM25 saturation and length normalization, the usual defaults.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Sub-query terms help rank but matter less than the user's own words.
const SUB_QUERY_WEIGHT: f64 = 0.5;
/// Weight of a synonym of a question term (synonyms::related): the question's
/// own word stays the stronger match.
const SYNONYM_WEIGHT: f64 = 0.7;
/// Sentences scoring below this share of the best one are off-topic filler.
const MIN_RELATIVE_SCORE: f64 = 0.25;
/// MMR trade-off between relevance and novelty.
const MMR_LAMBDA: f64 = 0.7;
/// Term-set Jaccard at or above which two sentences say the same thing.
const NEAR_DUPLICATE: f64 = 0.6;
/// Extra weight for sentences from higher-ranked documents, as a fraction.
const RANK_BONUS: f64 = 0.15;
/// A query term in a document's title counts this much (of one occurrence) for each of
/// its sentences: under "dict.setdefault", "Insert key with a value of default" is about
/// `dict.setdefault` without naming it.
const SUBJECT_WEIGHT: f64 = 0.6;
/// The first prose sentence of a document whose title shares a query term is its
/// summary, usually the answer to "what does X do".
const SUMMARY_BOOST: f64 = 2.0;
/// The sentences of the section documenting a symbol the question names (`str.join`)
/// count this much more than sentences elsewhere that merely use its words.
const NAMED_BOOST: f64 = 2.0;
/// In the section the question is about (documenting a symbol it names, or whose heading
/// holds the most of its terms, its rarest among them: `The "break" statement`), the
/// sentences right after the
/// summary go on with it (what `dataclass` adds, what `break` does): this many of them
/// count nearly as the summary does, less the further they are from it.
const LEAD_SENTENCES: usize = 3;
/// A sentence opening in lowercase is usually the tail of one cut at a line or
/// markup break ("the "import" statement occurs."), out of context.
const FRAGMENT_PENALTY: f64 = 0.5;
/// Longer "sentences" are usually scraped tables or menus; they get cut.
const MAX_SENTENCE_CHARS: usize = 400;

/// An extractive answer with its citations.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::{Answer, NO_ANSWER};
/// let a = Answer { text: NO_ANSWER.to_string(), citations: vec![] };
/// assert!(!a.is_found());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer; every sentence ends with ` [n]`.
    pub text: String,
    /// Index into the input documents of citation `[n]` at position `n - 1`.
    pub citations: Vec<usize>,
}

impl Answer {
    /// True unless this is the [`NO_ANSWER`] text.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::offline::Answer;
    /// assert!(Answer { text: "x [1]".into(), citations: vec![0] }.is_found());
    /// ```
    pub fn is_found(&self) -> bool {
        !self.citations.is_empty()
    }

    /// The text as streaming pieces (a word, or one Han character, with the
    /// whitespace before it); concatenated they give back `text` exactly.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::offline::Answer;
    /// let a = Answer { text: "Tokio is fast. [1]".into(), citations: vec![0] };
    /// assert_eq!(a.pieces().collect::<Vec<_>>(), ["Tokio", " is", " fast.", " [1]"]);
    /// ```
    pub fn pieces(&self) -> WordPieces<'_> {
        word_pieces(&self.text)
    }

    /// The pieces grouped `n` at a time (`n == 0` counts as 1), for callers
    /// that emit one event per batch rather than per token.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::offline::Answer;
    /// let a = Answer { text: "a b c d e".into(), citations: vec![] };
    /// assert_eq!(a.batches(2), ["a b", " c d", " e"]);
    /// ```
    pub fn batches(&self, n: usize) -> Vec<String> {
        let pieces: Vec<&str> = self.pieces().collect();
        pieces.chunks(n.max(1)).map(|c| c.concat()).collect()
    }
}

struct Candidate<'a> {
    doc: usize,
    text: &'a str,
    terms: HashSet<String>,
    score: f64,
    /// The score before the boosts, which order sentences but never exclude one.
    base: f64,
}

/// Builds an extractive, cited answer from `docs`.
///
/// Sentences are scored with BM25 against the query's key terms (and, at half
/// weight, the sub-queries'), with idf taken over `docs`; off-topic ones
/// (under a quarter of the best score) are dropped, and up to `max_sentences`
/// (at least 1) are chosen by maximal marginal relevance, which skips a
/// sentence repeating an already chosen one. Each sentence is followed by
/// ` [n]`, `n` numbering the cited documents in order of first use; when no
/// sentence is relevant the text is [`NO_ANSWER`] with no citations.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::build_answer;
/// use deepsearch_stream::search::Document;
/// let doc = |t: &str, c: &str| Document {
///     title: t.into(), url: String::new(), snippet: String::new(), content: c.into(), score: 1.0,
/// };
/// let docs = [doc("Go", "Go has goroutines."), doc("Tokio", "Tokio is an async runtime for Rust.")];
/// let a = build_answer("What is Tokio?", &[], &docs, 3);
/// assert_eq!(a.text, "Tokio is an async runtime for Rust. [1]");
/// assert_eq!(a.citations, [1]);
/// ```
pub fn build_answer(
    query: &str,
    sub_queries: &[String],
    docs: &[Document],
    max_sentences: usize,
) -> Answer {
    let weights = query_weights(query, sub_queries);
    let bodies: Vec<String> = docs.iter().map(|d| unwrap_lines(d.text())).collect();
    let named: Vec<String> = named_symbols(query)
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let mut candidates = score_sentences(&weights, &named, docs, &bodies);
    let chosen = select_mmr(&mut candidates, max_sentences.max(1));
    if chosen.is_empty() {
        return Answer {
            text: NO_ANSWER.to_string(),
            citations: Vec::new(),
        };
    }
    let mut citations: Vec<usize> = Vec::new();
    let mut parts = Vec::with_capacity(chosen.len());
    for c in chosen {
        let n = match citations.iter().position(|&d| d == c.doc) {
            Some(p) => p + 1,
            None => {
                citations.push(c.doc);
                citations.len()
            }
        };
        parts.push(format!("{} [{n}]", clip(c.text)));
    }
    Answer {
        text: parts.join(" "),
        citations,
    }
}

// A BTreeMap so the BM25 sum adds terms in a fixed order: float addition is
// not associative, and hash order would make ties flip between runs.
fn query_weights(query: &str, sub_queries: &[String]) -> BTreeMap<String, f64> {
    let mut weights = BTreeMap::new();
    for sub in sub_queries {
        for t in key_terms(sub) {
            weights.insert(term_key(&t), SUB_QUERY_WEIGHT);
        }
    }
    let own: Vec<String> = key_terms(query).iter().map(|t| term_key(t)).collect();
    for key in &own {
        for other in related(key) {
            weights.insert(other.to_string(), SYNONYM_WEIGHT);
        }
    }
    for key in own {
        weights.insert(key, 1.0);
    }
    weights
}

/// True when `heading` (lowercase) is the symbol `name` (lowercase, dotted) or a longer
/// name ending in it, or the same name with submodules between (`asyncio.queues.queue`
/// for `asyncio.queue`).
fn documents(heading: &str, name: &str) -> bool {
    if heading == name || heading.ends_with(&format!(".{name}")) {
        return true;
    }
    match (heading.split_once('.'), name.split_once('.')) {
        (Some((top, _)), Some((name_top, tail))) => {
            top == name_top && heading.ends_with(&format!(".{tail}"))
        }
        _ => false,
    }
}

fn score_sentences<'a>(
    weights: &BTreeMap<String, f64>,
    named: &[String],
    docs: &[Document],
    bodies: &'a [String],
) -> Vec<Candidate<'a>> {
    if weights.is_empty() || docs.is_empty() {
        return Vec::new();
    }
    let n_docs = docs.len() as f64;
    let mut df: HashMap<&str, usize> = HashMap::new();
    let doc_terms: Vec<HashSet<String>> = docs.iter().map(document_terms).collect();
    for terms in &doc_terms {
        for t in weights.keys() {
            if terms.contains(t) {
                *df.entry(t.as_str()).or_default() += 1;
            }
        }
    }
    let idf = |t: &str| {
        let d = *df.get(t).unwrap_or(&0) as f64;
        (1.0 + (n_docs - d + 0.5) / (d + 0.5)).ln()
    };
    let mut rank = vec![0usize; docs.len()];
    for (r, i) in rank_order(docs).into_iter().enumerate() {
        rank[i] = r;
    }

    // Query terms each document's own heading names: its subject. A title reads
    // "file — section"; the file part is shared by every section of the file.
    let subjects: Vec<Vec<&str>> = docs
        .iter()
        .map(|d| {
            let heading = d.title.rsplit(" — ").next().unwrap_or(&d.title);
            let title: HashSet<String> = term_keys(heading).into_iter().collect();
            weights
                .keys()
                .filter(|t| title.contains(*t))
                .map(String::as_str)
                .collect()
        })
        .collect();
    let names_subject: Vec<bool> = docs
        .iter()
        .map(|d| {
            let heading = d
                .title
                .rsplit(" — ")
                .next()
                .unwrap_or(&d.title)
                .to_lowercase();
            named.iter().any(|n| documents(heading.trim(), n))
        })
        .collect();
    // (document, sentence, its terms, its position among the document's prose sentences)
    // The documents the question is about: those naming a symbol it names, or, when one
    // or two headings hold more of its own terms (two at least, the rarest among them)
    // than any other, those.
    let own = |t: &str| weights.get(t).is_some_and(|w| *w >= 1.0);
    let cover: Vec<usize> = subjects
        .iter()
        .map(|s| s.iter().filter(|t| own(t)).count())
        .collect();
    let best_cover = cover.iter().copied().max().unwrap_or(0);
    let at_best = cover.iter().filter(|&&c| c == best_cover).count();
    // The question's most telling term (the rarest among the documents) must be in the
    // heading: "Built-in functions" is not what "the built-in zip function" is about.
    let rarest = weights
        .keys()
        .filter(|t| own(t))
        .fold(None::<(&str, f64)>, |best, t| match best {
            Some((_, i)) if i >= idf(t) => best,
            _ => Some((t.as_str(), idf(t))),
        })
        .map(|(t, _)| t);
    let about: Vec<bool> = (0..docs.len())
        .map(|d| {
            names_subject[d]
                || (best_cover >= 2
                    && at_best <= 2
                    && cover[d] == best_cover
                    && rarest.is_some_and(|r| subjects[d].contains(&r)))
        })
        .collect();
    let mut raw: Vec<(usize, &str, Vec<String>, usize)> = Vec::new();
    let mut seen_text: HashSet<&str> = HashSet::new();
    for (i, text) in bodies.iter().enumerate() {
        let mut position = 0;
        for (sentence, signature) in sentences(text) {
            if !signature && looks_like_code(sentence) {
                continue;
            }
            let terms = term_keys(sentence);
            if terms.len() >= 2 && seen_text.insert(sentence) {
                raw.push((i, sentence, terms, position));
                position += 1;
            }
        }
    }
    if raw.is_empty() {
        return Vec::new();
    }
    let avg_len = raw.iter().map(|r| r.2.len()).sum::<usize>() as f64 / raw.len() as f64;

    let mut out = Vec::new();
    for (doc, text, terms, position) in raw {
        let len = terms.len() as f64;
        let mut tf: HashMap<&str, f64> = HashMap::new();
        for t in &terms {
            *tf.entry(t.as_str()).or_default() += 1.0;
        }
        for t in &subjects[doc] {
            tf.entry(*t).or_insert(SUBJECT_WEIGHT);
        }
        let base: f64 = weights
            .iter()
            .filter_map(|(t, w)| {
                let f = *tf.get(t.as_str())?;
                Some(w * idf(t) * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len / avg_len)))
            })
            .sum();
        let mut bm25 = base;
        if position == 0 && !subjects[doc].is_empty() {
            bm25 *= SUMMARY_BOOST;
        } else if about[doc] && position < LEAD_SENTENCES {
            // The further from the summary, the less a sentence goes on with it.
            // Below the summary's own boost even right after it (position 1: 1.5).
            bm25 *= 1.0 + (SUMMARY_BOOST - 1.0) / (position + 1) as f64;
        }
        if names_subject[doc] {
            bm25 *= NAMED_BOOST;
        }
        if text.starts_with(char::is_lowercase) {
            bm25 *= FRAGMENT_PENALTY;
        }
        if bm25 > 0.0 {
            let r = rank[doc] as f64;
            let score = bm25 * (1.0 + RANK_BONUS * (1.0 - r / n_docs));
            out.push(Candidate {
                doc,
                text,
                terms: terms.into_iter().collect(),
                score,
                base,
            });
        }
    }
    out
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Greedy MMR; ties go to the earlier candidate (document order, then
/// sentence order) so the result never depends on hash order.
fn select_mmr<'a>(candidates: &mut Vec<Candidate<'a>>, max: usize) -> Vec<Candidate<'a>> {
    let best = candidates.iter().map(|c| c.score).fold(0.0, f64::max);
    if best <= 0.0 {
        return Vec::new();
    }
    let best_base = candidates.iter().map(|c| c.base).fold(0.0, f64::max);
    candidates.retain(|c| c.base >= best_base * MIN_RELATIVE_SCORE);
    let mut chosen: Vec<Candidate<'a>> = Vec::new();
    while chosen.len() < max && !candidates.is_empty() {
        let mut pick: Option<(usize, f64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let redundancy = chosen
                .iter()
                .map(|s| jaccard(&c.terms, &s.terms))
                .fold(0.0, f64::max);
            if redundancy >= NEAR_DUPLICATE {
                continue;
            }
            let value = MMR_LAMBDA * c.score / best - (1.0 - MMR_LAMBDA) * redundancy;
            if pick.is_none_or(|(_, v)| value > v) {
                pick = Some((i, value));
            }
        }
        let Some((i, _)) = pick else { break };
        chosen.push(candidates.remove(i));
    }
    chosen
}

/// Cuts an over-long sentence at a word boundary.
fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_SENTENCE_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX_SENTENCE_CHARS).collect();
    let at = cut
        .rfind(char::is_whitespace)
        .filter(|&i| i > MAX_SENTENCE_CHARS / 2)
        .unwrap_or(cut.len());
    format!("{}…", cut[..at].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: &str, content: &str, score: f64) -> Document {
        Document {
            title: title.into(),
            url: format!("https://{title}"),
            snippet: String::new(),
            content: content.into(),
            score,
        }
    }

    #[test]
    fn a_synonym_of_a_question_term_finds_the_sentence() {
        let docs = [doc(
            "gui — Options",
            "A widget draws itself on the screen. A frozen widget keeps its size.",
            1.0,
        )];
        let a = build_answer("How do I make a widget immutable?", &[], &docs, 1);
        assert_eq!(a.text, "A frozen widget keeps its size. [1]");
    }

    #[test]
    fn the_section_a_question_is_about_answers_with_its_lead() {
        let docs = [
            doc(
                "Simple statements — The \"while\" statement",
                "The \"while\" statement is used for repeated execution of a statement block.",
                1.0,
            ),
            doc(
                "Simple statements — The \"break\" statement",
                "\"break\" may only occur syntactically nested in a loop body.\n\n\
                 It terminates the nearest enclosing loop, skipping its else clause.\n\n\
                 When break passes control out of a try statement with a finally clause, \
                 that finally clause is executed before really leaving the loop.",
                0.9,
            ),
        ];
        let a = build_answer("What does the break statement do?", &[], &docs, 2);
        assert!(
            a.text.contains("It terminates the nearest enclosing loop"),
            "{}",
            a.text
        );
        assert!(!a.text.contains("finally clause"), "{}", a.text);
    }

    #[test]
    fn mmr_drops_near_duplicate() {
        let docs = [
            doc("a", "Tokio is an async runtime for the Rust language.", 1.0),
            doc(
                "b",
                "Tokio is an async runtime for the Rust programming language.",
                0.9,
            ),
            doc(
                "c",
                "Tokio provides timers and networking for async Rust.",
                0.8,
            ),
        ];
        let a = build_answer("tokio async runtime rust", &[], &docs, 3);
        assert_eq!(a.citations, [0, 2]);
        assert_eq!(
            a.text,
            "Tokio is an async runtime for the Rust language. [1] Tokio provides timers and networking for async Rust. [2]"
        );
    }

    #[test]
    fn long_sentences_are_clipped() {
        let long = format!("rust {}", "word ".repeat(200));
        let clipped = clip(long.trim());
        assert!(clipped.ends_with('…'));
        assert!(clipped.chars().count() <= MAX_SENTENCE_CHARS + 1);
    }

    #[test]
    fn snippet_used_when_content_empty() {
        let mut d = doc("x", "", 1.0);
        d.snippet = "Axum is a web framework built on Tokio.".into();
        let a = build_answer("axum web framework", &[], &[d], 2);
        assert_eq!(a.citations, [0]);
    }

    #[test]
    fn batches_cover_whole_text() {
        let a = Answer {
            text: "one two three".into(),
            citations: vec![],
        };
        assert_eq!(a.batches(0).concat(), a.text);
        assert_eq!(a.batches(100), ["one two three"]);
    }
}
