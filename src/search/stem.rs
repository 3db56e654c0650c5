//! Light English inflection folding, shared by the local engine's analyzer (index and
//! query alike) and the offline answer builder's term matching, so "expressions" finds
//! "Conditional expression" and "tokens" finds "token" in both.
//!
//! Intentionally timid (plural forms only): a real stemmer mangles the terms the
//! offline planner later puts back into search queries, and one rule for both sides
//! keeps what the engine matches and what the answer builder scores the same.

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// The singular of an ASCII plural (`queries` → `query`, `models` → `model`,
/// `classes` → `class`); other words unchanged. Words of three letters or fewer,
/// non-ASCII words and words ending in `ss`, `us` or `is` (`class`, `status`, `this`)
/// are left alone.
///
/// ```
/// use deepsearch_stream::search::stem::fold;
/// assert_eq!(fold("queries"), "query");
/// assert_eq!(fold("expressions"), "expression");
/// assert_eq!(fold("classes"), "class");
/// assert_eq!(fold("class"), "class");
/// assert_eq!(fold("status"), "status");
/// assert_eq!(fold("中国"), "中国");
/// ```
pub fn fold(term: &str) -> String {
    let n = term.len();
    if !term.is_ascii() || n <= 3 {
        return term.to_string();
    }
    if let Some(stem) = term.strip_suffix("ies").filter(|_| n > 4) {
        return format!("{stem}y");
    }
    if term.ends_with("sses") {
        return term[..n - 2].to_string();
    }
    if term.ends_with('s')
        && !(term.ends_with("ss") || term.ends_with("us") || term.ends_with("is"))
    {
        return term[..n - 1].to_string();
    }
    term.to_string()
}

/// The tantivy filter applying [`fold`] to every token.
#[derive(Clone)]
pub(crate) struct PluralFolder;

impl TokenFilter for PluralFolder {
    type Tokenizer<T: Tokenizer> = PluralFolderFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> Self::Tokenizer<T> {
        PluralFolderFilter { tokenizer }
    }
}

#[derive(Clone)]
pub(crate) struct PluralFolderFilter<T> {
    tokenizer: T,
}

impl<T: Tokenizer> Tokenizer for PluralFolderFilter<T> {
    type TokenStream<'a> = PluralFolderStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        PluralFolderStream {
            tail: self.tokenizer.token_stream(text),
        }
    }
}

pub(crate) struct PluralFolderStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for PluralFolderStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        if token.text.ends_with('s') {
            token.text = fold(&token.text);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};

    #[test]
    fn the_filter_folds_plurals_and_keeps_the_rest() {
        let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(PluralFolder)
            .build();
        let mut stream = analyzer.token_stream("Conditional Expressions of classes and queries is");
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        assert_eq!(
            out,
            [
                "conditional",
                "expression",
                "of",
                "class",
                "and",
                "query",
                "is"
            ]
        );
    }
}
