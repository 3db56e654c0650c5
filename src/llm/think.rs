//! Separating a model's reasoning from its answer.
//!
//! Reasoning models either send their thoughts in a separate field
//! (`reasoning_content`, `reasoning`) or inline as `<think>...</think>` in
//! the content. The inline form must never reach the user's answer, and in
//! a stream the tags can be cut anywhere (`"<th"` + `"ink>"`), so the
//! splitter holds back just enough text to recognize a tag across chunks.

/// One piece of a streamed chat completion.
///
/// ```
/// use deepsearch_stream::llm::Delta;
/// let answer: String = [Delta::Reasoning("hm".into()), Delta::Content("Hi".into()), Delta::Finish("stop".into())]
///     .iter()
///     .filter_map(|d| match d { Delta::Content(c) => Some(c.as_str()), _ => None })
///     .collect();
/// assert_eq!(answer, "Hi");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// Answer text, safe to show to the user.
    Content(String),
    /// The model's thinking; shown separately, if at all.
    Reasoning(String),
    /// The server's `finish_reason` (`stop`, `length`, ...), sent once at the end.
    Finish(String),
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Incremental splitter for inline `<think>` blocks.
///
/// ```
/// use deepsearch_stream::llm::{Delta, ThinkSplitter};
/// let mut s = ThinkSplitter::new();
/// let mut out = Vec::new();
/// for chunk in ["Hi <th", "ink>hmm</thi", "nk>\n\nthere"] {
///     s.push(chunk, &mut out);
/// }
/// s.finish(&mut out);
/// assert_eq!(
///     out,
///     [Delta::Content("Hi ".into()), Delta::Reasoning("hmm".into()), Delta::Content("there".into())]
/// );
/// ```
#[derive(Debug, Default, Clone)]
pub struct ThinkSplitter {
    in_think: bool,
    /// Text not yet emitted because it may be the start of a tag.
    held: String,
    /// Models put blank lines after `</think>`; they are not part of the answer.
    trim_next_content: bool,
}

impl ThinkSplitter {
    /// A splitter outside any think block.
    ///
    /// ```
    /// let _ = deepsearch_stream::llm::ThinkSplitter::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one content chunk; complete pieces are appended to `out`.
    ///
    /// ```
    /// use deepsearch_stream::llm::{Delta, ThinkSplitter};
    /// let mut out = Vec::new();
    /// ThinkSplitter::new().push("plain", &mut out);
    /// assert_eq!(out, [Delta::Content("plain".into())]);
    /// ```
    pub fn push(&mut self, chunk: &str, out: &mut Vec<Delta>) {
        self.held.push_str(chunk);
        loop {
            let tag = if self.in_think { CLOSE } else { OPEN };
            if let Some(i) = self.held.find(tag) {
                let before = self.held[..i].to_string();
                self.held.drain(..i + tag.len());
                self.emit(before, out);
                self.in_think = !self.in_think;
                self.trim_next_content = !self.in_think;
                continue;
            }
            let keep = partial_tag_len(&self.held, tag);
            let ready: String = self.held.drain(..self.held.len() - keep).collect();
            self.emit(ready, out);
            return;
        }
    }

    /// Flushes held text at the end of the stream. An unclosed think block
    /// stays reasoning: showing half a thought as the answer is worse than
    /// showing no answer.
    ///
    /// ```
    /// use deepsearch_stream::llm::{Delta, ThinkSplitter};
    /// let mut s = ThinkSplitter::new();
    /// let mut out = Vec::new();
    /// s.push("a <thi", &mut out);
    /// s.finish(&mut out);
    /// assert_eq!(out, [Delta::Content("a ".into()), Delta::Content("<thi".into())]);
    /// ```
    pub fn finish(&mut self, out: &mut Vec<Delta>) {
        let rest = std::mem::take(&mut self.held);
        self.emit(rest, out);
    }

    fn emit(&mut self, mut text: String, out: &mut Vec<Delta>) {
        if self.in_think {
            if !text.is_empty() {
                out.push(Delta::Reasoning(text));
            }
            return;
        }
        if self.trim_next_content {
            let trimmed = text.trim_start();
            if trimmed.is_empty() {
                return;
            }
            text = trimmed.to_string();
            self.trim_next_content = false;
        }
        if !text.is_empty() {
            out.push(Delta::Content(text));
        }
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `tag`.
fn partial_tag_len(text: &str, tag: &str) -> usize {
    (1..tag.len())
        .rev()
        .find(|&n| text.is_char_boundary(text.len().saturating_sub(n)) && text.ends_with(&tag[..n]))
        .unwrap_or(0)
}

/// Splits a complete response into `(reasoning, answer)`.
///
/// Handles `<think>` blocks anywhere, and also a lone `</think>` with no
/// opening tag, which is what models emit when the chat template already
/// opened the block inside the prompt.
///
/// ```
/// use deepsearch_stream::llm::split_think;
/// assert_eq!(split_think("<think>plan</think>\n{\"a\":1}"), ("plan".into(), "{\"a\":1}".into()));
/// assert_eq!(split_think("plan</think> answer"), ("plan".into(), "answer".into()));
/// assert_eq!(split_think("just text"), (String::new(), "just text".into()));
/// ```
pub fn split_think(text: &str) -> (String, String) {
    let text = match (text.find(OPEN), text.find(CLOSE)) {
        (open, Some(close)) if open.is_none_or(|o| o > close) => {
            let reasoning = text[..close].trim().to_string();
            let (more, answer) = split_think(&text[close + CLOSE.len()..]);
            let reasoning = [reasoning, more]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>();
            return (reasoning.join("\n"), answer);
        }
        _ => text,
    };
    let mut splitter = ThinkSplitter::new();
    let mut out = Vec::new();
    splitter.push(text, &mut out);
    splitter.finish(&mut out);
    let (mut reasoning, mut answer) = (Vec::new(), String::new());
    for d in out {
        match d {
            Delta::Reasoning(r) => reasoning.push(r.trim().to_string()),
            Delta::Content(c) => answer.push_str(&c),
            Delta::Finish(_) => {}
        }
    }
    (reasoning.join("\n"), answer.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> (String, String) {
        let mut s = ThinkSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        let mut r = String::new();
        let mut c = String::new();
        for d in out {
            match d {
                Delta::Reasoning(x) => r.push_str(&x),
                Delta::Content(x) => c.push_str(&x),
                Delta::Finish(_) => unreachable!(),
            }
        }
        (r, c)
    }

    #[test]
    fn tags_split_at_every_position() {
        let text = "<think>a < b</think>\n\nAnswer <b>x</b>";
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let parts = [&text[..i], &text[i..j], &text[j..]];
                assert_eq!(
                    run(&parts),
                    ("a < b".to_string(), "Answer <b>x</b>".to_string()),
                    "{parts:?}"
                );
            }
        }
    }

    #[test]
    fn multibyte_text_next_to_tags() {
        assert_eq!(
            run(&["思考<", "think>想", "</th", "ink>答案"]),
            ("想".into(), "思考答案".into())
        );
        assert_eq!(run(&["é<"]), (String::new(), "é<".into()));
    }

    #[test]
    fn unclosed_block_stays_reasoning() {
        assert_eq!(
            run(&["<think>still going"]),
            ("still going".into(), String::new())
        );
        assert_eq!(split_think("<think>x"), ("x".into(), String::new()));
    }

    #[test]
    fn several_blocks() {
        assert_eq!(
            run(&["<think>a</think>b<think>c</think>d"]),
            ("ac".into(), "bd".into())
        );
        assert_eq!(
            split_think("a</think>b<think>c</think>d"),
            ("a\nc".into(), "bd".into())
        );
    }
}
