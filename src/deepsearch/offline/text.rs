//! Text primitives shared by the offline planner, reasoner and answer builder:
//! a tokenizer that also copes with Chinese, a sentence splitter, query
//! normalization and the streaming piece splitter.
//!
//! Everything here is a pure function of its input so that the offline path
//! gives byte-identical results on every run.

use std::collections::HashSet;

/// Words that carry no topic on their own. Kept deliberately short: a long
/// list starts eating real terms ("new", "first", "use") and hurts recall.
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as",
    "at", "be", "been", "before", "being", "between", "both", "but", "by", "can", "could", "did",
    "do", "does", "doing", "during", "each", "for", "from", "had", "has", "have", "having", "he",
    "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just",
    "me", "might", "more", "most", "must", "my", "no", "nor", "not", "of", "off", "on", "only",
    "or", "other", "our", "ours", "out", "over", "shall", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "us", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "whose", "why", "will", "with", "would",
    "you", "your", "yours",
];

/// Words that frame a question rather than name its topic. They are words in
/// documents (so the tokenizer keeps them) but never key terms of a query.
const QUERY_FILLER: &str =
    "compare compared comparison describe difference differences explain please tell versus vs";

/// Chinese function words removed from Han runs before bigramming, longest
/// first so that "为什么" wins over "什么". Without this, a query like
/// "中国的首都是哪里" yields bigrams such as "是哪" that no document contains,
/// which would drag coverage down for no reason.
const HAN_FUNCTION_WORDS: &str = "为什么 是什么 有什么 有哪些 有没有 怎么样 什么 怎么 如何 哪些 哪个 哪里 是否 可以 一个 以及 还是 或者 我们 你们 他们 它们 这个 那个 这些 那些 \
    但是 于是 可是 就是 只是 总是 而是 不是 为了 除了 关于 对于 由于 因为 所以 区别 比较 对比 不同 差异";

/// Words that contain a separator character but must stay whole.
const HAN_PROTECTED: &str = "和平 和谐 总和 温和 缓和 和解 参与 目的 的确 了解";

/// Single Han characters that act like spaces: particles and conjunctions.
const HAN_SEPARATORS: &[char] = &[
    '的', '了', '吗', '呢', '吧', '啊', '呀', '和', '与', '是', '它', '谁',
];

/// Abbreviations after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "fig", "al",
    "approx", "cf", "inc", "ltd", "co", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec",
];

/// True for CJK unified ideographs (the scripts written without spaces that
/// the bigram rule is for).
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::is_han;
/// assert!(is_han('中') && !is_han('a') && !is_han('。'));
/// ```
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2EBEF | 0x30000..=0x3134F)
}

/// True when `word` (already lowercase) is on the English stopword list.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::is_stopword;
/// assert!(is_stopword("the"));
/// assert!(!is_stopword("rust"));
/// ```
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

/// Splits `text` into lowercase terms, dropping stopwords.
///
/// Latin/Cyrillic/etc. words split on anything that is not alphanumeric
/// (apostrophes inside words are folded, a possessive `'s` is dropped, and
/// decimals such as `3.12` stay whole). Runs of Han characters have function
/// words removed and are then emitted as overlapping bigrams, because Chinese
/// has no spaces and bigrams match far better than single characters.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::tokenize;
/// assert_eq!(tokenize("What is Rust's borrow-checker?"), ["rust", "borrow", "checker"]);
/// assert_eq!(tokenize("中国的首都是哪里"), ["中国", "首都"]);
/// assert_eq!(tokenize("Python 3.12 发布日期"), ["python", "3.12", "发布", "布日", "日期"]);
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    scan(text, true)
}

/// Like [`tokenize`] but keeps each Han segment whole instead of cutting it
/// into bigrams: the readable form for building search queries.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::words;
/// assert_eq!(words("水果的营养价值"), ["水果", "营养价值"]);
/// assert_eq!(words("The Rust book"), ["rust", "book"]);
/// ```
pub fn words(text: &str) -> Vec<String> {
    scan(text, false)
}

fn scan(text: &str, bigrams: bool) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut word = String::new();
    let mut han = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_han(c) {
            flush_word(&mut word, &mut out);
            han.push(c);
        } else {
            flush_han(&mut han, &mut out, bigrams);
            let prev_alnum = i > 0 && chars[i - 1].is_alphanumeric();
            let next = chars.get(i + 1).copied();
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if (c == '\'' || c == '\u{2019}')
                && prev_alnum
                && next.is_some_and(char::is_alphabetic)
            {
                let after = chars.get(i + 2).copied();
                if matches!(next, Some('s' | 'S')) && !after.is_some_and(char::is_alphanumeric) {
                    // Possessive: "Rust's" should match documents saying "Rust".
                    i += 1;
                }
            } else if (c == '.' || c == ',')
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && next.is_some_and(|n| n.is_ascii_digit())
            {
                word.push(c);
            } else {
                flush_word(&mut word, &mut out);
            }
        }
        i += 1;
    }
    flush_word(&mut word, &mut out);
    flush_han(&mut han, &mut out, bigrams);
    out
}

fn flush_word(word: &mut String, out: &mut Vec<String>) {
    if !word.is_empty() && !is_stopword(word) {
        out.push(std::mem::take(word));
    }
    word.clear();
}

fn flush_han(run: &mut String, out: &mut Vec<String>, bigrams: bool) {
    if run.is_empty() {
        return;
    }
    let chars: Vec<char> = run.chars().collect();
    let mut segment: Vec<char> = Vec::new();
    let mut i = 0;
    'scan: while i < chars.len() {
        for protected in HAN_PROTECTED.split(' ') {
            if starts_with_at(&chars, i, protected) {
                segment.extend(protected.chars());
                i += protected.chars().count();
                continue 'scan;
            }
        }
        for function_word in HAN_FUNCTION_WORDS.split(' ') {
            if starts_with_at(&chars, i, function_word) {
                emit_segment(&mut segment, out, bigrams);
                i += function_word.chars().count();
                continue 'scan;
            }
        }
        if HAN_SEPARATORS.contains(&chars[i]) {
            emit_segment(&mut segment, out, bigrams);
        } else {
            segment.push(chars[i]);
        }
        i += 1;
    }
    emit_segment(&mut segment, out, bigrams);
    run.clear();
}

fn starts_with_at(chars: &[char], at: usize, word: &str) -> bool {
    let mut rest = chars.get(at..).unwrap_or_default().iter();
    word.chars().all(|w| rest.next() == Some(&w))
}

fn emit_segment(segment: &mut Vec<char>, out: &mut Vec<String>, bigrams: bool) {
    match segment.len() {
        0 => {}
        1 => out.push(segment[0].to_string()),
        _ if !bigrams => out.push(segment.iter().collect()),
        _ => out.extend(segment.windows(2).map(|w| w.iter().collect::<String>())),
    }
    segment.clear();
}

/// Folds light English inflection so "models" matches "model" and "queries"
/// matches "query": the local engine's rule ([`crate::search::stem::fold`]), so the
/// answer builder scores terms as the engine matched them.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::term_key;
/// assert_eq!(term_key("queries"), "query");
/// assert_eq!(term_key("models"), "model");
/// assert_eq!(term_key("class"), "class");
/// assert_eq!(term_key("中国"), "中国");
/// ```
pub fn term_key(term: &str) -> String {
    crate::search::stem::fold(term)
}

/// [`tokenize`] followed by [`term_key`]: the form used for matching.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::term_keys;
/// assert_eq!(term_keys("Vector databases"), ["vector", "database"]);
/// ```
pub fn term_keys(text: &str) -> Vec<String> {
    tokenize(text).iter().map(|t| term_key(t)).collect()
}

/// The [`term_keys`] of a document's title and text: what a question or a cited claim
/// is matched against.
pub fn document_terms(doc: &crate::search::Document) -> HashSet<String> {
    term_keys(&doc.title)
        .into_iter()
        .chain(term_keys(doc.text()))
        .collect()
}

/// The terms of a query that name its topic, in query order, without
/// duplicates (by [`term_key`]) and without question framing words such as
/// "difference" or "explain".
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::key_terms;
/// assert_eq!(key_terms("What is the difference between TCP and UDP?"), ["tcp", "udp"]);
/// ```
pub fn key_terms(query: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    tokenize(query)
        .into_iter()
        .filter(|t| !QUERY_FILLER.split(' ').any(|f| f == t))
        .filter(|t| seen.insert(term_key(t)))
        .collect()
}

/// [`key_terms`] in the readable [`words`] form: Han segments stay whole,
/// so "营养价值" is one phrase rather than three bigrams.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::key_phrases;
/// assert_eq!(key_phrases("橙子的营养价值是什么"), ["橙子", "营养价值"]);
/// ```
pub fn key_phrases(query: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words(query)
        .into_iter()
        .filter(|t| !QUERY_FILLER.split(' ').any(|f| f == t))
        .filter(|t| seen.insert(term_key(t)))
        .collect()
}

/// Dotted names the question writes (`str.join`, `os.path.join`): each is a search of
/// its own, which finds the symbol's documentation rather than its words' neighbours.
pub(crate) fn named_symbols(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in query.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')) {
        let word = word.trim_matches('.');
        let dotted = word.contains('.')
            && word.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
            });
        if dotted && !out.iter().any(|o| o == word) {
            out.push(word.to_string());
        }
    }
    out
}

/// Folds case, width, punctuation and whitespace so that two spellings of the
/// same search ("Rust  async?" and "rust async") compare equal.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::normalize_query;
/// assert_eq!(normalize_query("  Rust, ASYNC runtimes?? "), "rust async runtimes");
/// assert_eq!(normalize_query("Ｒｕｓｔ　异步？"), "rust 异步");
/// assert_eq!(normalize_query("İstanbul"), normalize_query(&normalize_query("İstanbul")));
/// ```
pub fn normalize_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut pending_space = false;
    for c in query.chars() {
        let c = fold_width(c);
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            // Lowercasing can add combining marks ('İ' → "i\u{307}"); dropping them keeps
            // the normal form a fixed point, as dedup by normalized query needs.
            out.extend(c.to_lowercase().filter(|l| l.is_alphanumeric()));
        } else {
            pending_space = true;
        }
    }
    out
}

/// Full-width ASCII forms (common in Chinese input methods) to plain ASCII.
fn fold_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    }
}

/// Splits text into trimmed sentences.
///
/// Breaks after `.`, `!`, `?` when followed by whitespace (or a closing quote
/// or bracket and then whitespace) and the next word does not start in
/// lowercase; always after `。！？`; and at every newline. A period after a
/// known abbreviation ("e.g.", "Dr.") or a single initial ("J.") does not
/// break, so "e.g. tokio" stays in one sentence.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::split_sentences;
/// let s = split_sentences("Use a runtime, e.g. Tokio. It is fast! 北京是首都。上海很大");
/// assert_eq!(s, ["Use a runtime, e.g. Tokio.", "It is fast!", "北京是首都。", "上海很大"]);
/// ```
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let indices: Vec<(usize, char)> = text.char_indices().collect();
    let mut k = 0;
    while k < indices.len() {
        let (pos, c) = indices[k];
        let end = match c {
            '\n' | '\r' => Some((pos, pos + c.len_utf8())),
            '。' | '！' | '？' => {
                let mut j = k + 1;
                while j < indices.len() && is_closer(indices[j].1) {
                    j += 1;
                }
                let cut = indices.get(j).map_or(text.len(), |&(p, _)| p);
                Some((cut, cut))
            }
            '.' | '!' | '?' => latin_break(text, &indices, k),
            _ => None,
        };
        if let Some((cut, resume)) = end {
            push_trimmed(&text[start..cut], &mut out);
            start = resume;
            while k + 1 < indices.len() && indices[k + 1].0 < resume {
                k += 1;
            }
        }
        k += 1;
    }
    push_trimmed(&text[start..], &mut out);
    out
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '」' | '』' | '）')
}

/// Decides whether the Latin terminator at `indices[k]` ends a sentence;
/// returns the byte offset where the sentence text ends and where the next
/// one starts.
fn latin_break(text: &str, indices: &[(usize, char)], k: usize) -> Option<(usize, usize)> {
    let (pos, c) = indices[k];
    let mut j = k + 1;
    // Runs like "?!" or "..." end together.
    while j < indices.len() && matches!(indices[j].1, '.' | '!' | '?') {
        j += 1;
    }
    while j < indices.len() && is_closer(indices[j].1) {
        j += 1;
    }
    let cut = indices.get(j).map_or(text.len(), |&(p, _)| p);
    let Some(&(_, after)) = indices.get(j) else {
        return Some((cut, cut));
    };
    if !after.is_whitespace() {
        return None;
    }
    let next_word = indices[j..]
        .iter()
        .map(|&(_, ch)| ch)
        .find(|ch| !ch.is_whitespace());
    if next_word.is_some_and(|ch| ch.is_lowercase()) {
        return None;
    }
    if c == '.' && j == k + 1 && is_abbreviation(&text[..pos]) {
        return None;
    }
    Some((cut, cut))
}

fn is_abbreviation(before: &str) -> bool {
    let word: String = before
        .chars()
        .rev()
        .take_while(|ch| ch.is_alphanumeric() || *ch == '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let lower = word.to_lowercase();
    let single_initial = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
    single_initial || ABBREVIATIONS.contains(&lower.as_str())
}

fn is_trailing_punct(c: char) -> bool {
    is_closer(c)
        || matches!(
            c,
            '。' | '！' | '？' | '，' | '、' | '；' | '：' | '.' | ',' | '!' | '?' | ';' | ':'
        )
}

fn push_trimmed<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let t = s.trim();
    if !t.is_empty() {
        out.push(t);
    }
}

/// Splits text into streaming pieces: each piece is one word (or one Han
/// character) with the whitespace before it, so concatenating the pieces
/// gives back the text exactly.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::word_pieces;
/// let pieces: Vec<&str> = word_pieces("Rust is fast. [1]").collect();
/// assert_eq!(pieces, ["Rust", " is", " fast.", " [1]"]);
/// assert_eq!(word_pieces("北京。").collect::<Vec<_>>(), ["北", "京。"]);
/// ```
pub fn word_pieces(text: &str) -> WordPieces<'_> {
    WordPieces { rest: text }
}

/// Iterator returned by [`word_pieces`].
///
/// ```
/// use deepsearch_stream::deepsearch::offline::text::word_pieces;
/// assert_eq!(word_pieces("a b c").count(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct WordPieces<'a> {
    rest: &'a str,
}

impl<'a> Iterator for WordPieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let mut iter = self.rest.char_indices().peekable();
        while iter.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut end = self.rest.len();
        let mut first = true;
        while let Some(&(i, c)) = iter.peek() {
            if c.is_whitespace() {
                end = i;
                break;
            }
            // One Han character per piece keeps Chinese answers streaming
            // smoothly; trailing punctuation sticks to the character before it.
            if !first && is_han(c) {
                end = i;
                break;
            }
            iter.next();
            if is_han(c) {
                while iter.next_if(|&(_, p)| is_trailing_punct(p)).is_some() {}
                end = iter.peek().map_or(self.rest.len(), |&(j, _)| j);
                break;
            }
            first = false;
        }
        let (piece, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopword_list_is_sorted_for_binary_search() {
        let mut sorted = STOPWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOPWORDS);
    }

    #[test]
    fn tokenizer_handles_unicode_and_edges() {
        assert!(tokenize("").is_empty());
        assert!(tokenize("the and of ?!").is_empty());
        assert_eq!(tokenize("Ünïcode Straße"), ["ünïcode", "straße"]);
        assert_eq!(tokenize("don't stop"), ["dont", "stop"]);
        assert_eq!(tokenize("水"), ["水"]);
        assert_eq!(tokenize("机器学习"), ["机器", "器学", "学习"]);
        assert_eq!(tokenize("世界和平"), ["世界", "界和", "和平"]);
        assert_eq!(tokenize("Rust和Go的区别"), ["rust", "go"]);
        assert_eq!(tokenize("1,000 users at 3.5%."), ["1,000", "users", "3.5"]);
    }

    #[test]
    fn sentence_splitter_cases() {
        assert!(split_sentences("").is_empty());
        assert!(split_sentences("  \n \n").is_empty());
        assert_eq!(
            split_sentences("Dr. Smith arrived. He sat."),
            ["Dr. Smith arrived.", "He sat."]
        );
        assert_eq!(
            split_sentences("Version 3.12 is out. Yes"),
            ["Version 3.12 is out.", "Yes"]
        );
        assert_eq!(
            split_sentences("Wait... what? No!"),
            ["Wait... what?", "No!"]
        );
        assert_eq!(
            split_sentences("I said no. Then left."),
            ["I said no.", "Then left."]
        );
        assert_eq!(
            split_sentences("He said \"Go.\" Then left."),
            ["He said \"Go.\"", "Then left."]
        );
        assert_eq!(
            split_sentences("line one\nline two"),
            ["line one", "line two"]
        );
        assert_eq!(
            split_sentences("J. R. R. Tolkien wrote it."),
            ["J. R. R. Tolkien wrote it."]
        );
        assert_eq!(
            split_sentences("你好！真的吗？是的。"),
            ["你好！", "真的吗？", "是的。"]
        );
        assert_eq!(split_sentences("「好。」然后"), ["「好。」", "然后"]);
    }

    #[test]
    fn normalization_folds_noise() {
        assert_eq!(normalize_query(""), "");
        assert_eq!(normalize_query("?!"), "");
        assert_eq!(normalize_query("Rust-async"), "rust async");
        assert_eq!(
            normalize_query("\tRust\n async "),
            normalize_query("rust async")
        );
    }

    #[test]
    fn pieces_round_trip() {
        for text in ["", " lead", "a  b\n\nc ", "混合 text，中文。[2]", "Tail "] {
            let joined: String = word_pieces(text).collect();
            assert_eq!(joined, text);
        }
        assert_eq!(word_pieces("a  b").collect::<Vec<_>>(), ["a", "  b"]);
    }
}
