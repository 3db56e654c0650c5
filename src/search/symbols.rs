//! Code symbols (`str.join`, `asyncio.Queue`) as the local engine indexes and
//! queries them.
//!
//! API documentation puts one symbol per section heading (`## asyncio.queues.Queue`).
//! BM25 over words cannot tell `str.join` from `threading.Thread.join`: both hold
//! `join`. So each passage also carries the dotted names of its headings, indexed
//! whole, with the shorter names a reader would write (every suffix, and the top
//! package with every suffix: `asyncio.Queue` for `asyncio.queues.Queue`); a question
//! naming one of them finds that section first.

/// Words of a question that never name a symbol: question framing and auxiliaries.
const NOT_SYMBOLS: &[&str] = &[
    "a", "an", "and", "are", "can", "do", "does", "for", "from", "how", "i", "in", "is", "it",
    "its", "my", "of", "on", "or", "the", "to", "what", "when", "which", "why", "with", "you",
];

/// Words between a name and its owner in "X in Y" phrasing, which means `Y.X`.
const OWNER_LAST: &[&str] = &["in", "of", "from"];

/// At most this many names per passage: a short file left whole can hold many
/// headings, and the field should stay small.
const MAX_SYMBOLS: usize = 64;

/// True for a dotted identifier: `name` or `a.b.c`, each part a letter or `_` followed by
/// letters, digits and `_`.
fn is_symbol(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// The symbols a passage documents: its own heading and every heading inside its text
/// (a short file is indexed whole, headings included), when they are dotted
/// identifiers. Lowercased, deduplicated, in order.
///
/// ```text
/// heading "json.dumps" → ["json.dumps"]; "Basic customization" → []
/// ```
pub(crate) fn passage_symbols(heading: Option<&str>, text: &str) -> Vec<String> {
    let inner = text.lines().filter_map(|line| {
        let rest = line.trim_start().strip_prefix('#')?;
        Some(rest.trim_start_matches('#').trim())
    });
    let mut out: Vec<String> = Vec::new();
    for name in heading.into_iter().chain(inner) {
        let name = name.trim().to_lowercase();
        if is_symbol(&name) && !out.contains(&name) {
            out.push(name);
            if out.len() == MAX_SYMBOLS {
                break;
            }
        }
    }
    out
}

/// The names a reader may write for `symbol` (lowercase, dotted): every suffix, and the
/// top-level package followed by every shorter suffix.
pub(crate) fn aliases(symbol: &str) -> Vec<String> {
    let parts: Vec<&str> = symbol.split('.').collect();
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    for start in 0..parts.len() {
        push(parts[start..].join("."));
    }
    for start in 2..parts.len() {
        push(format!("{}.{}", parts[0], parts[start..].join(".")));
    }
    out
}

/// The symbol names a query may mean, dotted ones first: names written with dots
/// (`str.join`), then adjacent words joined by a dot (`asyncio queue` may mean
/// `asyncio.queue`), then single words.
pub(crate) fn query_symbols(query: &str) -> (Vec<String>, Vec<String>) {
    let raw: Vec<String> = query
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map(|t| t.trim_matches('.').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let named = |t: &String| is_symbol(t) && !NOT_SYMBOLS.contains(&t.as_str());
    let tokens: Vec<String> = raw.iter().filter(|t| named(t)).cloned().collect();
    let mut dotted: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    for t in &tokens {
        let list = if t.contains('.') {
            &mut dotted
        } else {
            &mut words
        };
        if !list.contains(t) {
            list.push(t.clone());
        }
    }
    for pair in tokens.windows(2) {
        if !pair[0].contains('.') && !pair[1].contains('.') {
            let joined = format!("{}.{}", pair[0], pair[1]);
            if !dotted.contains(&joined) {
                dotted.push(joined);
            }
        }
    }
    // "the timeout in asyncio", "join of str": English names the owner last.
    for w in raw.windows(3) {
        if OWNER_LAST.contains(&w[1].as_str()) && named(&w[0]) && named(&w[2]) {
            let joined = format!("{}.{}", w[2], w[0]);
            if !w[0].contains('.') && !dotted.contains(&joined) {
                dotted.push(joined);
            }
        }
    }
    (dotted, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_come_from_dotted_headings_only() {
        assert_eq!(
            passage_symbols(Some("pkg.Mod.run"), "text"),
            ["pkg.mod.run"]
        );
        assert!(passage_symbols(Some("Basic customization"), "no heading").is_empty());
        let text = "# tool\n\n## tool.Parser\n\nParses.\n\n### tool.Parser.feed\n\nFeeds.";
        assert_eq!(
            passage_symbols(None, text),
            ["tool", "tool.parser", "tool.parser.feed"]
        );
        assert!(!is_symbol("1st.thing") && !is_symbol("a..b") && !is_symbol("a-b"));
    }

    #[test]
    fn aliases_are_suffixes_and_package_plus_suffix() {
        assert_eq!(
            aliases("net.streams.Reader".to_lowercase().as_str()),
            [
                "net.streams.reader",
                "streams.reader",
                "reader",
                "net.reader"
            ]
        );
        assert_eq!(aliases("len"), ["len"]);
    }

    #[test]
    fn query_symbols_keep_dotted_names_and_pair_neighbours() {
        let (dotted, words) = query_symbols("What does text.split do?");
        assert_eq!(dotted, ["text.split"]);
        assert!(words.is_empty());
        let (dotted, words) = query_symbols("How do I make a bounded net queue?");
        assert_eq!(dotted, ["make.bounded", "bounded.net", "net.queue"]);
        assert_eq!(words, ["make", "bounded", "net", "queue"]);
    }

    #[test]
    fn x_in_y_also_means_y_dot_x() {
        let (dotted, _) = query_symbols("How do I set a deadline in netlib?");
        assert_eq!(
            dotted,
            ["set.deadline", "deadline.netlib", "netlib.deadline"]
        );
        let (dotted, _) = query_symbols("What is the split of text.tools?");
        assert_eq!(dotted, ["text.tools", "text.tools.split"]);
    }
}
