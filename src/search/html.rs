//! HTML to readable text, shared by the local corpus indexer and the page reader.
//!
//! A deliberately small, forgiving scanner rather than a spec-compliant parser: the
//! goal is search and LLM context, where dropping markup and keeping block structure
//! matters and exact DOM fidelity does not. Headings come out as markdown `#` lines
//! so the passage splitter treats HTML and markdown sections the same way.

/// Text pulled out of an HTML document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlText {
    /// Contents of `<title>`, whitespace collapsed; `None` when absent or empty.
    pub title: Option<String>,
    /// Visible text. Paragraphs are separated by blank lines and `<h1>`..`<h6>`
    /// become `#`..`######` lines.
    pub text: String,
}

/// Elements whose content is never visible text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "select",
];

/// Elements that start a new paragraph.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "ul",
];

/// Extracts the title and the visible text of `html`.
///
/// Never fails: malformed markup degrades to "text with stray characters".
/// `script`, `style` and similar elements are dropped with their content and
/// character references (`&amp;`, `&#x27;`, ...) are decoded.
pub fn extract(html: &str) -> HtmlText {
    let mut out = TextSink::default();
    let mut title: Option<String> = None;
    let mut pre_depth = 0usize;
    let mut rest = html;

    while let Some(lt) = rest.find('<') {
        out.text(&rest[..lt], pre_depth > 0);
        rest = &rest[lt..];

        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            // A `<` that does not open a tag is just text ("a < b").
            out.text("<", pre_depth > 0);
            rest = &rest[1..];
            continue;
        };
        rest = &rest[tag.len..];
        let name = tag.name.as_str();

        if !tag.closing && SKIPPED.contains(&name) {
            rest = skip_past_closing(rest, name);
            continue;
        }
        if !tag.closing && name == "title" {
            let end = find_closing(rest, "title");
            let raw = &rest[..end.map_or(rest.len(), |(start, _)| start)];
            let decoded = collapse_whitespace(&decode(raw));
            if title.is_none() && !decoded.is_empty() {
                title = Some(decoded);
            }
            rest = end.map_or("", |(_, after)| &rest[after..]);
            continue;
        }
        match name {
            "br" => out.line_break(),
            "li" if !tag.closing => {
                out.line_break();
                out.raw("- ");
            }
            "tr" => out.line_break(),
            "td" | "th" if !tag.closing => out.text(" ", false),
            "pre" => {
                out.paragraph_break();
                pre_depth = if tag.closing {
                    pre_depth.saturating_sub(1)
                } else {
                    pre_depth + 1
                };
            }
            _ => {
                if let Some(level) = heading_level(name) {
                    out.paragraph_break();
                    if !tag.closing {
                        out.raw(&"#".repeat(level));
                        out.raw(" ");
                    }
                } else if BLOCKS.contains(&name) {
                    out.paragraph_break();
                }
            }
        }
    }
    out.text(rest, pre_depth > 0);

    HtmlText {
        title,
        text: out.finish(),
    }
}

/// Decodes character references; a thin seam so every caller decodes the same way.
pub(crate) fn decode(text: &str) -> String {
    html_escape::decode_html_entities(text).into_owned()
}

/// Flattens an HTML fragment (e.g. a provider snippet with `<strong>` marks) to one line.
pub(crate) fn inline_text(fragment: &str) -> String {
    collapse_whitespace(&extract(fragment).text)
}

/// Collapses every run of whitespace to one space and trims the ends.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn heading_level(name: &str) -> Option<usize> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(usize::from(d - b'0')),
        _ => None,
    }
}

/// One start or end tag, as far as the scanner cares.
struct Tag {
    name: String,
    closing: bool,
    /// Bytes from `<` through `>`.
    len: usize,
}

impl Tag {
    /// Parses the tag at the start of `s` (which begins with `<`). Declarations and
    /// processing instructions (`<!DOCTYPE`, `<?xml`) come back with an empty name.
    fn parse(s: &str) -> Option<Tag> {
        let bytes = s.as_bytes();
        let mut i = 1;
        let closing = bytes.get(i) == Some(&b'/');
        if closing {
            i += 1;
        }
        let first = *bytes.get(i)?;
        let declaration = !closing && (first == b'!' || first == b'?');
        if !declaration && !first.is_ascii_alphabetic() {
            return None;
        }
        let name_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
            i += 1;
        }
        let name = if declaration {
            String::new()
        } else {
            s[name_start..i].to_ascii_lowercase()
        };
        // Attribute values may contain `>`, so honour quotes while looking for the end.
        let mut quote: Option<u8> = None;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b'>' => {
                    return Some(Tag {
                        name,
                        closing,
                        len: i + 1,
                    })
                }
                None => {}
            }
            i += 1;
        }
        // Unterminated tag: swallow the rest rather than leak markup into the text.
        Some(Tag {
            name,
            closing,
            len: s.len(),
        })
    }
}

/// Finds `</name ...>` case-insensitively; returns (start of the tag, index after it).
/// Compares in place: lowercasing the rest of the page per skipped element would
/// make pages with many scripts quadratic.
fn find_closing(s: &str, name: &str) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(pos) = s[from..].find("</") {
        let start = from + pos;
        let name_end = start + 2 + name.len();
        let same_name = bytes
            .get(start + 2..name_end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        // `</scripts>` must not close `<script>`.
        let name_ends = !bytes
            .get(name_end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'-');
        if same_name && name_ends {
            let end = s[name_end..]
                .find('>')
                .map_or(s.len(), |p| name_end + p + 1);
            return Some((start, end));
        }
        from = start + 2;
    }
    None
}

fn skip_past_closing<'a>(s: &'a str, name: &str) -> &'a str {
    find_closing(s, name).map_or("", |(_, after)| &s[after..])
}

/// Accumulates text while tracking pending spaces and breaks, so markup boundaries
/// never glue words together nor pile up blank lines.
#[derive(Default)]
struct TextSink {
    out: String,
    /// 0 = nothing pending, 1 = a line break, 2 = a paragraph break.
    pending_break: u8,
    pending_space: bool,
}

impl TextSink {
    fn text(&mut self, raw: &str, preformatted: bool) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode(raw);
        if preformatted {
            self.raw(&decoded);
            return;
        }
        let starts_ws = decoded.starts_with(char::is_whitespace);
        let ends_ws = decoded.ends_with(char::is_whitespace);
        let mut words = decoded.split_whitespace().peekable();
        if words.peek().is_none() {
            self.pending_space = true;
            return;
        }
        if starts_ws {
            self.pending_space = true;
        }
        let mut first = true;
        for word in words {
            if !first {
                self.pending_space = true;
            }
            self.raw(word);
            first = false;
        }
        self.pending_space = ends_ws;
    }

    fn raw(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if !self.out.is_empty() {
            match self.pending_break {
                2 => self.out.push_str("\n\n"),
                1 => self.out.push('\n'),
                _ if self.pending_space && !self.out.ends_with(char::is_whitespace) => {
                    self.out.push(' ')
                }
                _ => {}
            }
        }
        self.pending_break = 0;
        self.pending_space = false;
        self.out.push_str(s);
    }

    fn line_break(&mut self) {
        self.pending_break = self.pending_break.max(1);
    }

    fn paragraph_break(&mut self) {
        self.pending_break = 2;
    }

    fn finish(self) -> String {
        let mut text = String::with_capacity(self.out.len());
        let mut blank_run = 0;
        for line in self.out.lines() {
            let line = line.trim_end();
            if line.is_empty() {
                blank_run += 1;
                if blank_run > 1 {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            text.push_str(line);
            text.push('\n');
        }
        text.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_text_and_skipped_elements() {
        let page = extract(
            "<!DOCTYPE html><html><head><title> Tea &amp; Biscuits </title>\
             <style>p { color: red }</style><script>var x = '<p>';</script></head>\
             <body><h1>Brewing</h1><p>Steep for <b>three</b>&nbsp;minutes.</p>\
             <!-- hidden --><p>Serve&#x21;</p></body></html>",
        );
        assert_eq!(page.title.as_deref(), Some("Tea & Biscuits"));
        assert_eq!(page.text, "# Brewing\n\nSteep for three minutes.\n\nServe!");
    }

    #[test]
    fn words_never_glue_across_tags() {
        let page = extract("<div>alpha</div><div>beta</div><span>gamma</span> <i>delta</i>");
        assert_eq!(page.text, "alpha\n\nbeta\n\ngamma delta");
    }

    #[test]
    fn stray_angle_brackets_and_quoted_attributes() {
        let page = extract("<p title=\"a > b\">1 < 2</p><p>ok</p><unterminated");
        assert_eq!(page.text, "1 < 2\n\nok");
    }

    #[test]
    fn lists_preformatted_and_inline() {
        let page = extract("<ul><li>one</li><li>two</li></ul><pre>a\n  b</pre>");
        assert_eq!(page.text, "- one\n- two\n\na\n  b");
        assert_eq!(
            inline_text("<strong>Rust</strong> is &quot;fast&quot;"),
            "Rust is \"fast\""
        );
    }

    #[test]
    fn closing_tag_match_is_exact() {
        let page = extract("<script>a</scripts> b</script>after");
        assert_eq!(page.text, "after");
        let page = extract("<SCRIPT type=x>if (a</b) {}</SCRIPT >Shown<STYLE>x</Style>");
        assert_eq!(page.text, "Shown");
        // An unclosed script hides the rest rather than leaking code.
        assert_eq!(extract("text<script>var x").text, "text");
    }
}
