//! Rule-based query planner: turns the user's question into search queries
//! for one round of the DeepSearch loop without calling a model.

use std::collections::HashSet;

use super::reasoner::term_coverage;
use super::text::{key_phrases, key_terms, named_symbols, normalize_query, term_key, term_keys};
use crate::deepsearch::PlanHistory;

/// How many key terms go into the compact key-term query. Engines degrade
/// when fed a long bag of words, so the tail of a rambling question is cut.
const KEY_TERM_QUERY_LEN: usize = 6;

/// How many covered terms anchor a gap query to the main topic.
const TOPIC_LEN: usize = 3;

/// Plans up to `max_queries` search queries for `round` (1-based; 0 is
/// treated as 1).
///
/// Round 1 searches the question as asked, then each dotted name it writes
/// (`dict.get`), then each part of a multi-part question (split at "?", ";",
/// " and " between clauses, "、", "和", "以及") or each side of a comparison
/// ("X vs Y", "difference between X and Y", "X和Y的区别"), then the first
/// key terms of a long question. Later rounds target gaps: the reasoner's
/// rewrite, then the uncovered key terms combined with the covered main topic.
/// No query is returned that was already searched or planned (as normalized by
/// [`normalize_query`]), no bag of key words whose set of terms was (a reordering
/// finds the same documents), and none without any key term.
/// An empty result means nothing new is worth searching.
///
/// ```
/// use deepsearch_stream::deepsearch::{offline::plan, PlanHistory};
/// let q = plan("What is the difference between TCP and UDP?", 1, &PlanHistory::new(), 5);
/// assert_eq!(q, ["What is the difference between TCP and UDP?", "TCP", "UDP"]);
/// let q = plan("What does dict.get return for a missing key?", 1, &PlanHistory::new(), 5);
/// assert_eq!(q, ["What does dict.get return for a missing key?", "dict.get"]);
/// ```
pub fn plan(query: &str, round: usize, history: &PlanHistory, max_queries: usize) -> Vec<String> {
    let query = query.trim();
    if max_queries == 0 || key_terms(query).is_empty() {
        return Vec::new();
    }
    let candidates = if round <= 1 || history.searched.is_empty() {
        first_round(query)
    } else {
        follow_up(query, history)
    };
    let mut seen: HashSet<String> = history
        .searched
        .iter()
        .map(|s| normalize_query(s))
        .collect();
    let mut seen_terms: HashSet<Vec<String>> =
        history.searched.iter().map(|s| term_set(s)).collect();
    let mut out = Vec::new();
    for candidate in candidates {
        let candidate = candidate.split_whitespace().collect::<Vec<_>>().join(" ");
        if key_terms(&candidate).is_empty() {
            continue;
        }
        // A bag of key words that only reorders a searched query's terms finds the same
        // documents; a phrasing (a question part, a comparison side) is still new.
        let terms = term_set(&candidate);
        let is_new = seen.insert(normalize_query(&candidate));
        if !is_new || (is_keywords(&candidate) && seen_terms.contains(&terms)) {
            continue;
        }
        seen_terms.insert(terms);
        out.push(candidate);
        if out.len() == max_queries {
            break;
        }
    }
    out
}

/// True for a query made of key words only ("tcp udp"), not a phrasing.
fn is_keywords(query: &str) -> bool {
    normalize_query(query) == key_phrases(query).join(" ")
}

/// The sorted, deduplicated [`term_key`]s of a query's key terms.
fn term_set(query: &str) -> Vec<String> {
    let mut keys: Vec<String> = key_terms(query).iter().map(|t| term_key(t)).collect();
    keys.sort();
    keys.dedup();
    keys
}

fn first_round(query: &str) -> Vec<String> {
    let mut out = vec![query.to_string()];
    out.extend(named_symbols(query));
    if let Some(sides) = split_comparison(query) {
        out.extend(sides);
    } else {
        let parts = split_parts(query);
        if parts.len() > 1 {
            out.extend(parts);
        }
    }
    out.push(
        key_phrases(query)
            .iter()
            .take(KEY_TERM_QUERY_LEN)
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    );
    out
}

fn follow_up(query: &str, history: &PlanHistory) -> Vec<String> {
    let missing_keys: HashSet<String> = if history.missing_terms.is_empty() {
        let terms = key_terms(query);
        let covered = term_coverage(&terms, history.documents.iter());
        terms
            .iter()
            .zip(covered)
            .filter(|(_, c)| !c)
            .map(|(t, _)| term_key(t))
            .collect()
    } else {
        history
            .missing_terms
            .iter()
            .flat_map(|t| term_keys(t))
            .collect()
    };
    // Gaps are tracked per term (Han bigrams included) but queries are built
    // from whole phrases, so "营养价值" is searched rather than "养价".
    let phrases = key_phrases(query);
    let is_missing = |p: &String| term_keys(p).iter().any(|k| missing_keys.contains(k));
    let mut gaps: Vec<String> = phrases.iter().filter(|p| is_missing(p)).cloned().collect();
    // Gaps named by a model reasoner need not be words of the query.
    for extra in &history.missing_terms {
        let extra = extra.trim().to_lowercase();
        let keys = term_keys(&extra);
        let in_query = phrases.iter().any(|p| {
            let phrase_keys = term_keys(p);
            keys.iter().all(|k| phrase_keys.contains(k))
        });
        if !extra.is_empty() && !in_query && !gaps.contains(&extra) {
            gaps.push(extra);
        }
    }
    let mut out = Vec::new();
    if let Some(rewrite) = &history.rewrite_query {
        out.push(rewrite.clone());
    }
    let topic: Vec<&String> = phrases
        .iter()
        .filter(|p| !is_missing(p))
        .take(TOPIC_LEN)
        .collect();
    if topic.is_empty() {
        // Nothing is covered, so there is no topic to anchor single gaps to;
        // searching "configure" or "top" alone would only bring noise.
        if !gaps.is_empty() {
            out.push(gaps.join(" "));
        }
        // The whole conjunction found nothing relevant: each half may still find a
        // document that covers part of the question, which gives the next round a topic.
        if gaps.len() >= 4 {
            let (front, back) = gaps.split_at(gaps.len() / 2);
            out.push(front.join(" "));
            out.push(back.join(" "));
        }
    } else if !gaps.is_empty() {
        let topic = topic
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if gaps.len() > 1 {
            out.push(format!("{topic} {}", gaps.join(" ")));
        }
        out.extend(gaps.iter().map(|gap| format!("{topic} {gap}")));
    }
    if history.documents.is_empty() {
        // Earlier rounds found nothing: any first-round formulation not yet
        // tried is still worth a shot.
        out.extend(first_round(query));
    }
    out
}

/// Finds `needle` (ASCII, lowercase) in `hay` ignoring ASCII case; byte
/// offsets stay valid because ASCII lowercasing never changes lengths.
fn find_ci(hay: &str, needle: &str, from: usize) -> Option<usize> {
    hay.get(from..)?
        .to_ascii_lowercase()
        .find(needle)
        .map(|i| i + from)
}

fn is_edge_noise(word: &str) -> bool {
    let w = normalize_query(word);
    w.is_empty() || key_terms(&w).is_empty() || matches!(w.as_str(), "better" | "faster" | "best")
}

/// Strips question framing ("which is better:", "the") from both ends.
fn trim_edges(text: &str) -> String {
    let text =
        text.trim_matches(|c: char| c.is_whitespace() || "?？.。!！,，:：;；\"'".contains(c));
    let words: Vec<&str> = text.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| !is_edge_noise(w))
        .unwrap_or(words.len());
    let end = words
        .iter()
        .rposition(|w| !is_edge_noise(w))
        .map_or(start, |e| e + 1);
    let out = words[start..end.max(start)].join(" ");
    out.trim_matches(|c: char| "?？.。!！,，:：;；".contains(c))
        .to_string()
}

/// Both sides of a comparison question, or `None` when it is not one.
/// The sides of a comparison question, or `None` when it is not one.
fn split_comparison(query: &str) -> Option<Vec<String>> {
    let sides = english_comparison(query).or_else(|| chinese_comparison(query))?;
    let sides: Vec<String> = sides.iter().map(|s| trim_edges(s)).collect();
    sides
        .iter()
        .all(|s| !key_terms(s).is_empty())
        .then_some(sides)
}

const VERSUS: &[&str] = &[
    " vs. ",
    " vs ",
    " versus ",
    " compared to ",
    " compared with ",
];

/// Splits at every occurrence of any of `seps` (ASCII, lowercase).
fn split_all_ci<'a>(text: &'a str, seps: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((i, sep)) = seps
        .iter()
        .filter_map(|sep| find_ci(rest, sep, 0).map(|i| (i, sep)))
        .min_by_key(|&(i, _)| i)
    {
        out.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    out.push(rest);
    out
}

fn english_comparison(q: &str) -> Option<Vec<String>> {
    for lead in [
        "difference between ",
        "differences between ",
        "comparison of ",
        "compare ",
    ] {
        if let Some(i) = find_ci(q, lead, 0) {
            let rest = &q[i + lead.len()..];
            for conj in [" and ", " with ", " to ", " vs. ", " vs ", " versus "] {
                if let Some(j) = find_ci(rest, conj, 0) {
                    return Some(vec![
                        rest[..j].to_string(),
                        cut_at_clause_end(&rest[j + conj.len()..]),
                    ]);
                }
            }
        }
    }
    let mut sides = split_all_ci(q, VERSUS);
    if sides.len() > 1 {
        let first = sides[0];
        sides[0] = first
            .rfind([':', ',', '：', '，'])
            .map_or(first, |k| &first[k + 1..]);
        let mut out: Vec<String> = sides.iter().map(|s| s.to_string()).collect();
        if let Some(last) = out.last_mut() {
            *last = cut_at_clause_end(last);
        }
        return Some(out);
    }
    // "Is Python faster than Java?": the comparative itself is not a side.
    let i = find_ci(q, " than ", 0)?;
    let mut left: Vec<&str> = q[..i].split_whitespace().collect();
    left.pop();
    if left
        .last()
        .is_some_and(|w| w.eq_ignore_ascii_case("more") || w.eq_ignore_ascii_case("less"))
    {
        left.pop();
    }
    Some(vec![
        left.join(" "),
        cut_at_clause_end(&q[i + " than ".len()..]),
    ])
}

fn cut_at_clause_end(text: &str) -> String {
    text.split(['?', '？', ',', '，', ';', '；', ':', '：'])
        .next()
        .unwrap_or("")
        .to_string()
}

fn chinese_comparison(q: &str) -> Option<Vec<String>> {
    const MARKERS: &[&str] = &["区别", "差异", "不同", "对比", "比较", "哪个好", "哪个更"];
    const CONJUNCTIONS: &[&str] = &["和", "与", "跟", "同", "对比", "vs", "VS"];
    const RIGHT_ENDS: &[&str] = &[
        "的区别",
        "的差异",
        "的不同",
        "的对比",
        "的比较",
        "有什么",
        "有何",
        "哪个",
        "区别",
        "差异",
        "不同",
        "？",
        "?",
        "，",
    ];
    if !MARKERS.iter().any(|m| q.contains(m)) {
        return None;
    }
    let body = q
        .trim_start_matches("请问")
        .trim_start_matches("比较")
        .trim_start_matches("对比");
    for conj in CONJUNCTIONS {
        let Some(i) = body.find(conj) else { continue };
        let left = &body[..i];
        let mut right = &body[i + conj.len()..];
        if let Some(end) = RIGHT_ENDS.iter().filter_map(|e| right.find(e)).min() {
            right = &right[..end];
        }
        if !left.trim().is_empty() && !right.trim().is_empty() {
            return Some(vec![left.to_string(), right.to_string()]);
        }
    }
    None
}

/// Splits a multi-part question into self-contained parts; a single part
/// means it is not multi-part.
fn split_parts(query: &str) -> Vec<String> {
    let clauses: Vec<String> = query
        .split(['?', '？', ';', '；', '\n'])
        .flat_map(|c| c.split("以及"))
        .flat_map(split_and)
        .map(|c| {
            c.trim_matches(|ch: char| ch.is_whitespace() || "，,。.".contains(ch))
                .to_string()
        })
        .filter(|c| !key_terms(c).is_empty() || has_pronoun(c))
        .collect();
    let topic = clauses.first().map(|c| {
        key_phrases(c)
            .into_iter()
            .take(TOPIC_LEN)
            .collect::<Vec<_>>()
            .join(" ")
    });
    let mut out = Vec::new();
    for (n, clause) in clauses.iter().enumerate() {
        let items = split_enumeration(clause);
        for item in items {
            match &topic {
                Some(topic) if n > 0 && !topic.is_empty() && has_pronoun(&item) => {
                    out.push(replace_pronoun(&item, topic));
                }
                Some(topic) if n > 0 && !topic.is_empty() && key_terms(&item).is_empty() => {
                    out.push(format!("{topic} {item}"));
                }
                _ => out.push(item),
            }
        }
    }
    out
}

/// Splits at " and " / "和" only between clauses: when the right side opens
/// with a question word, or both sides carry two or more key terms. "pros
/// and cons of Rust" and "salt and pepper" stay whole.
fn split_and(clause: &str) -> Vec<String> {
    const OPENERS: &[&str] = &[
        "what", "how", "why", "who", "when", "where", "which", "is", "are", "does", "do", "can",
        "should", "will", "did", "was", "were",
    ];
    const HAN_OPENERS: &[&str] = &["什么", "怎么", "如何", "为什么", "哪", "是否", "谁"];
    for conj in [" and ", "和"] {
        let found = if conj == "和" {
            clause.find(conj)
        } else {
            find_ci(clause, conj, 0)
        };
        let Some(i) = found else { continue };
        let (left, right) = (&clause[..i], &clause[i + conj.len()..]);
        let first_word = right
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let opens = OPENERS.contains(&first_word.as_str())
            || HAN_OPENERS.iter().any(|o| right.starts_with(o));
        if opens || (key_terms(left).len() >= 2 && key_terms(right).len() >= 2) {
            let mut parts = vec![left.to_string()];
            parts.extend(split_and(right));
            return parts;
        }
    }
    vec![clause.to_string()]
}

/// Splits "北京、上海、广州的人口" into items, carrying the last item's trailing
/// context ("人口") over to items that have only their own name.
fn split_enumeration(clause: &str) -> Vec<String> {
    let items: Vec<&str> = clause
        .split('、')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.len() < 2 {
        return vec![clause.to_string()];
    }
    let last_terms = key_phrases(items[items.len() - 1]);
    let context = last_terms.get(1..).unwrap_or_default().join(" ");
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if i + 1 < items.len() && !context.is_empty() && key_phrases(item).len() <= 1 {
                format!("{item} {context}")
            } else {
                item.to_string()
            }
        })
        .collect()
}

const PRONOUNS: &[&str] = &["it", "its", "they", "them", "their", "this"];
const HAN_PRONOUNS: &[&str] = &["它们", "它"];

fn has_pronoun(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| PRONOUNS.contains(&w.to_ascii_lowercase().as_str()))
        || HAN_PRONOUNS.iter().any(|p| text.contains(p))
}

/// Replaces the first pronoun so "who created it" becomes "who created rust".
fn replace_pronoun(text: &str, topic: &str) -> String {
    for p in HAN_PRONOUNS {
        if let Some(i) = text.find(p) {
            return format!("{}{topic}{}", &text[..i], &text[i + p.len()..]);
        }
    }
    let words: Vec<String> = text
        .split_whitespace()
        .scan(false, |done, w| {
            let bare = w
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_ascii_lowercase();
            if !*done && PRONOUNS.contains(&bare.as_str()) {
                *done = true;
                return Some(topic.to_string());
            }
            Some(w.to_string())
        })
        .collect();
    words.join(" ")
}
