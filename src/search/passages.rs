//! Splitting documents into passages of a few hundred words.
//!
//! BM25 over whole files rewards long files and returns hits too coarse to quote,
//! so long files are cut along their markdown headings (HTML headings arrive as
//! markdown lines too, see `html::extract`) and, inside long sections, along
//! paragraph breaks. Each passage keeps the heading it sits under and a GitHub-style
//! anchor slug, so a hit can link straight to its section.

use std::collections::HashMap;

/// How big passages get, in whitespace-separated words.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SplitOptions {
    /// A file with at most this many words stays one passage; no chunk grows past it
    /// unless a single paragraph-free run of text forces a hard cut.
    pub max_words: usize,
    /// Chunks close once they reach this size.
    pub target_words: usize,
    /// A trailing chunk smaller than this is folded into its predecessor when it fits.
    pub min_words: usize,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            max_words: 400,
            target_words: 250,
            min_words: 40,
        }
    }
}

/// One piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Passage {
    /// Heading of the section the passage belongs to; `None` for the text before the
    /// first heading and for files that were not split.
    pub heading: Option<String>,
    /// Anchor of that section; `None` exactly when `heading` is.
    pub slug: Option<String>,
    pub text: String,
}

/// Splits `text` into passages. Returns a single unsplit passage for short texts and
/// nothing at all for texts without words.
pub(crate) fn split(text: &str, opts: SplitOptions) -> Vec<Passage> {
    let text = text.trim();
    if word_count(text) == 0 {
        return Vec::new();
    }
    if word_count(text) <= opts.max_words {
        return vec![Passage {
            heading: None,
            slug: None,
            text: text.to_string(),
        }];
    }

    let mut slugs = SlugAllocator::default();
    let mut passages = Vec::new();
    for section in sections(text) {
        let slug = section.heading.as_deref().map(|h| slugs.allocate(h));
        for chunk in chunk_paragraphs(&section.body, opts) {
            passages.push(Passage {
                heading: section.heading.clone(),
                slug: slug.clone(),
                text: chunk,
            });
        }
    }
    passages
}

/// The first level-1 heading outside code fences, used as a markdown file's title.
pub(crate) fn first_h1(text: &str) -> Option<String> {
    let mut fence = FenceTracker::default();
    text.lines()
        .filter(|line| !fence.inside_after(line))
        .find_map(|line| parse_heading(line).filter(|(level, _)| *level == 1))
        .map(|(_, heading)| heading)
}

/// Splits off YAML front matter (`---` ... `---` at the very top) and returns its
/// `title:` value, if any, with the remaining body.
pub(crate) fn front_matter(text: &str) -> (Option<String>, &str) {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    let mut offset = 0;
    let mut title = None;
    for line in rest.split_inclusive('\n') {
        offset += line.len();
        let trimmed = line.trim();
        if trimmed == "---" || trimmed == "..." {
            return (title, &rest[offset..]);
        }
        if let Some(value) = trimmed.strip_prefix("title:") {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
            if !value.is_empty() {
                title = Some(value.to_string());
            }
        }
    }
    // No closing fence: it was a horizontal rule, not front matter.
    (None, text)
}

/// GitHub-style anchor: lowercase, spaces become `-`, punctuation other than `-`
/// and `_` is dropped. Non-ASCII letters are kept, as GitHub does.
pub(crate) fn slugify(heading: &str) -> String {
    let mut slug = String::with_capacity(heading.len());
    for c in heading.trim().chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if c == ' ' || c == '-' {
            slug.push('-');
        } else if c == '_' {
            slug.push('_');
        }
    }
    if slug.is_empty() {
        slug.push_str("section");
    }
    slug
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Repeated headings get `-1`, `-2`, ... like GitHub does, so every anchor is unique.
#[derive(Default)]
struct SlugAllocator {
    seen: HashMap<String, usize>,
}

impl SlugAllocator {
    fn allocate(&mut self, heading: &str) -> String {
        let base = slugify(heading);
        let count = self.seen.entry(base.clone()).or_insert(0);
        let slug = if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        };
        *count += 1;
        slug
    }
}

struct Section {
    heading: Option<String>,
    body: String,
}

fn sections(text: &str) -> Vec<Section> {
    let mut out = vec![Section {
        heading: None,
        body: String::new(),
    }];
    let mut fence = FenceTracker::default();
    for line in text.lines() {
        let in_code = fence.inside_after(line);
        match parse_heading(line).filter(|_| !in_code) {
            Some((_, heading)) => out.push(Section {
                heading: Some(heading),
                body: String::new(),
            }),
            None => {
                let body = &mut out.last_mut().expect("never empty").body;
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    out
}

/// Tracks fenced code blocks so `# comment` lines in code are not taken as headings.
#[derive(Default)]
struct FenceTracker {
    open: Option<char>,
}

impl FenceTracker {
    /// Feeds one line; true if the line belongs to a fenced block (fences included).
    fn inside_after(&mut self, line: &str) -> bool {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let marker = ['`', '~']
            .into_iter()
            .find(|m| indent <= 3 && trimmed.starts_with(&m.to_string().repeat(3)));
        match (self.open, marker) {
            (None, Some(m)) => {
                self.open = Some(m);
                true
            }
            (Some(open), Some(m)) if open == m => {
                self.open = None;
                true
            }
            (open, _) => open.is_some(),
        }
    }
}

/// An ATX heading (`## Title ##`) with at most three spaces of indent.
fn parse_heading(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let heading = rest.trim().trim_end_matches('#').trim_end();
    if heading.is_empty() {
        return None;
    }
    Some((level, heading.to_string()))
}

/// Groups paragraphs into chunks of roughly `target_words`.
fn chunk_paragraphs(body: &str, opts: SplitOptions) -> Vec<String> {
    let mut chunks: Vec<(String, usize)> = Vec::new();
    let mut current = String::new();
    let mut current_words = 0;

    let flush = |chunks: &mut Vec<(String, usize)>, current: &mut String, words: &mut usize| {
        if *words > 0 {
            chunks.push((std::mem::take(current).trim().to_string(), *words));
        }
        current.clear();
        *words = 0;
    };

    for paragraph in paragraphs(body) {
        let words = word_count(paragraph);
        if words > opts.max_words {
            flush(&mut chunks, &mut current, &mut current_words);
            // A wall of text with no blank lines: cut it by word count.
            let all: Vec<&str> = paragraph.split_whitespace().collect();
            for window in all.chunks(opts.target_words.max(1)) {
                chunks.push((window.join(" "), window.len()));
            }
            continue;
        }
        if current_words >= opts.target_words || current_words + words > opts.max_words {
            flush(&mut chunks, &mut current, &mut current_words);
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(paragraph.trim());
        current_words += words;
    }
    flush(&mut chunks, &mut current, &mut current_words);

    if chunks.len() >= 2 {
        let (_, last_words) = chunks[chunks.len() - 1];
        let (_, prev_words) = chunks[chunks.len() - 2];
        if last_words < opts.min_words && prev_words + last_words <= opts.max_words {
            let (last, _) = chunks.pop().expect("len >= 2");
            let prev = chunks.last_mut().expect("len >= 1");
            prev.0.push_str("\n\n");
            prev.0.push_str(&last);
            prev.1 += last_words;
        }
    }
    chunks.into_iter().map(|(text, _)| text).collect()
}

/// Blank-line separated blocks that contain at least one word.
fn paragraphs(body: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(&body[s..offset]);
            }
        } else if start.is_none() {
            start = Some(offset);
        }
        offset += line.len();
    }
    if let Some(s) = start {
        out.push(&body[s..]);
    }
    out.into_iter().filter(|p| word_count(p) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, word: &str) -> String {
        vec![word; n].join(" ")
    }

    #[test]
    fn short_text_is_one_unsplit_passage() {
        let passages = split("# Title\n\nshort body", SplitOptions::default());
        assert_eq!(passages.len(), 1);
        assert_eq!(passages[0].slug, None);
        assert_eq!(passages[0].text, "# Title\n\nshort body");
        assert!(split(" \n\n ", SplitOptions::default()).is_empty());
    }

    #[test]
    fn long_text_splits_on_headings_with_unique_slugs() {
        let text = format!(
            "intro {}\n\n## Setup & Install\n\n{}\n\n## Usage\n\n{}\n\n## Usage\n\n{}\n\n```sh\n# not a heading\n```\n",
            words(10, "a"),
            words(200, "b"),
            words(200, "c"),
            words(50, "d"),
        );
        let passages = split(&text, SplitOptions::default());
        let slugs: Vec<_> = passages.iter().map(|p| p.slug.as_deref()).collect();
        assert_eq!(
            slugs,
            [None, Some("setup--install"), Some("usage"), Some("usage-1")]
        );
        assert!(passages[3].text.contains("# not a heading"));
        assert_eq!(passages[1].heading.as_deref(), Some("Setup & Install"));
    }

    #[test]
    fn long_sections_split_on_paragraphs_and_walls_of_text_by_words() {
        let opts = SplitOptions {
            max_words: 100,
            target_words: 60,
            min_words: 20,
        };
        let paras: Vec<String> = (0..5).map(|_| words(30, "p")).collect();
        let text = format!(
            "# A\n\n{}\n\n# B\n\n{}",
            paras.join("\n\n"),
            words(250, "w")
        );
        let passages = split(&text, opts);
        let counts: Vec<usize> = passages.iter().map(|p| word_count(&p.text)).collect();
        // B's 10-word tail is folded into the chunk before it.
        assert_eq!(counts, [60, 60, 30, 60, 60, 60, 70]);
        assert!(passages.iter().all(|p| p.heading.is_some()));
    }

    #[test]
    fn titles_and_front_matter() {
        assert_eq!(
            first_h1("```\n# code\n```\n## Two\n# One #\n").as_deref(),
            Some("One")
        );
        let (title, body) = front_matter("---\ntitle: \"Guide\"\ntags: x\n---\n# Body\n");
        assert_eq!(title.as_deref(), Some("Guide"));
        assert_eq!(body, "# Body\n");
        assert_eq!(front_matter("---\nno end").1, "---\nno end");
        assert_eq!(slugify("Hello, World! 2"), "hello-world-2");
        assert_eq!(slugify("Ünïcode_名前"), "ünïcode_名前");
        assert_eq!(slugify("!!!"), "section");
        assert_eq!(parse_heading("#hashtag"), None);
    }
}
