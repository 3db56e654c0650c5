//! Which lines of a document are prose: the sentences of its text, hard-wrapped lines
//! joined back, and the code, shell and signature lines that quoted alone answer nothing.

use super::text::split_sentences;

/// True for shell lines, interpreter sessions, code and reST directives: documentation
/// is full of them, and quoted out of context they answer nothing.
///
/// ```text
/// "$ python -m json.tool"  "  >>> json.dumps(x)"  "Example::"  "{'a': [1, 2]}"
/// ```
pub(super) fn looks_like_code(sentence: &str) -> bool {
    let s = sentence.trim();
    let words = s
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    // Signatures, headings and key-value fragments are too short to be an answer.
    let han = s
        .chars()
        .filter(|c| crate::deepsearch::offline::text::is_han(*c))
        .count();
    if words < 4 && han < 6 {
        return true;
    }
    // A call or signature: `name.attr(args...)` before any space, after a `class`,
    // `def` or `async def` keyword.
    let mut heads = s.split_whitespace();
    let mut head = heads.next().unwrap_or("");
    while matches!(head, "class" | "def" | "async") {
        head = heads.next().unwrap_or("");
    }
    if head.contains('(')
        && head.split('(').next().is_some_and(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        })
    {
        return true;
    }
    if ["$ ", ">>>", "...", "#", "//", "%"]
        .iter()
        .any(|p| s.starts_with(p))
        || s.ends_with("::")
        || s.ends_with('{')
        || s.ends_with(';')
    {
        return true;
    }
    let (mut letters, mut symbols) = (0usize, 0usize);
    for c in s.chars() {
        // `_` is part of names prose mentions (`__slots__`), `*` the emphasis of
        // reference text (`*iterable*`).
        if c.is_alphabetic() || c.is_whitespace() || c == '_' {
            letters += 1;
        } else if !matches!(
            c,
            '.' | ',' | '\'' | '"' | '-' | '?' | '!' | ':' | '(' | ')' | '*'
        ) {
            symbols += 1;
        }
    }
    // Prose is mostly letters and spaces; code is dense with brackets and operators.
    s.contains("::=") || symbols * 6 > letters
}

/// The sentences of `text`, each with whether it is a signature line that says what the
/// call returns (`defaultdict(default_factory=None, /, [...]) --> dict with default
/// factory`, the first line of many built-in docstrings). Such a line is kept whole: the
/// sentence splitter would cut it at `[...]`, and its two halves read as code and as a
/// fragment, though together they are the symbol's summary.
pub(super) fn sentences(text: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if is_signature_result(trimmed) {
            out.push((trimmed, true));
        } else {
            out.extend(split_sentences(line).into_iter().map(|s| (s, false)));
        }
    }
    out
}

/// True for `name(args) -> what it returns` (or `-->`), the result in words (at least
/// two, so a bare type such as `-> str` is not taken for a summary).
fn is_signature_result(line: &str) -> bool {
    let Some(open) = line.find('(') else {
        return false;
    };
    let name = &line[..open];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
    {
        return false;
    }
    let Some((call, result)) = line.split_once(" --> ").or_else(|| line.split_once(" -> ")) else {
        return false;
    };
    call.trim_end().ends_with(')')
        && result
            .split_whitespace()
            .filter(|w| w.chars().all(char::is_alphabetic))
            .count()
            >= 2
}

/// A list item, heading, quote or table row: a line that begins a block of its own.
fn is_item(line: &str) -> bool {
    line.starts_with(['-', '+', '#', '>', '|']) || line.starts_with("* ") || line == "*"
}

/// Joins hard-wrapped lines (docstrings, plain text) back into paragraphs, so a
/// sentence is not cut where its line happened to end. A line break stays where a
/// paragraph, a list item or a block indented deeper begins, or after a finished
/// sentence; lines of one indented paragraph (reference text is indented) join.
pub(super) fn unwrap_lines(text: &str) -> String {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        let joins = prev.is_some_and(|p| {
            let p_trim = p.trim();
            !p_trim.is_empty()
                && !trimmed.is_empty()
                && (indent(line) == 0 || indent(line) == indent(p))
                && !is_item(trimmed)
                && !p_trim.ends_with(['.', '!', '?', ':', '。', '！', '？', '：'])
        });
        if prev.is_some() {
            out.push(if joins { ' ' } else { '\n' });
        }
        out.push_str(if joins { trimmed } else { line });
        prev = Some(line);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrapped_lines_become_paragraphs() {
        let text = "Run the command with arguments\nand wait for it to finish.\n\n  indented\n- item\nDone.\nNext";
        assert_eq!(
            super::unwrap_lines(text),
            "Run the command with arguments and wait for it to finish.\n\n  indented\n- item Done.\nNext"
        );
    }

    #[test]
    fn code_is_not_prose() {
        for code in [
            "$ echo '{\"json\":\"obj\"}' | python -m json.tool",
            ">>> json.dumps([1, 2])",
            "Using json.tool from the shell to validate and pretty-print::",
            "x = {'a': [1, 2], 'b': {'c': 3}}",
            "\"json\": \"obj\"",
            "class ast.Assert",
            "class json.decoder.JSONDecoder(*, object_hook=None, parse_float=None, strict=True)",
            "subprocess.run(*popenargs, input=None, capture_output=False, timeout=None)",
            "Assert(expr test, expr? msg)",
            "assert_stmt ::= \"assert\" expression [\",\" expression]",
        ] {
            assert!(super::looks_like_code(code), "{code}");
        }
        for prose in [
            "Deserialize fp (a .read()-supporting text file) to a Python object.",
            "Tokio is an asynchronous runtime for Rust, e.g. for network services.",
            "北京是中国的首都。",
        ] {
            assert!(!super::looks_like_code(prose), "{prose}");
        }
    }

    #[test]
    fn a_signature_line_saying_what_it_returns_is_one_sentence() {
        let text = "Bases: dict\n\ndefaultdict(default_factory=None, /, [...]) --> dict with default factory\n\nThe default factory is called.";
        let got = super::sentences(text);
        assert!(
            got.contains(&(
                "defaultdict(default_factory=None, /, [...]) --> dict with default factory",
                true
            )),
            "{got:?}"
        );
        assert!(got.contains(&("The default factory is called.", false)));
        for not_one in [
            "S.join(iterable) -> str",
            "print(x) is a call --> nothing",
            "run the job --> then wait for it",
        ] {
            assert!(!super::is_signature_result(not_one), "{not_one}");
        }
    }
}
