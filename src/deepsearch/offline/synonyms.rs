//! A few words a question uses for what documentation calls by another name.
//!
//! Kept small on purpose: only pairs that mean the same in any programming
//! documentation (a reader asks for an "immutable" object, the reference says
//! "frozen"), never words picked for one question. Matched on [`term_key`]
//! forms, so plurals come along.
//!
//! [`term_key`]: super::text::term_key

/// Groups of interchangeable terms, in `term_key` form.
const GROUPS: &[&[&str]] = &[
    &["immutable", "frozen"],
    &["directory", "folder"],
    &["delete", "remove"],
];

/// The other terms of `key`'s group, empty when it has none.
///
/// ```
/// use deepsearch_stream::deepsearch::offline::synonyms::related;
/// assert_eq!(related("frozen"), ["immutable"]);
/// assert!(related("tokio").is_empty());
/// ```
pub fn related(key: &str) -> Vec<&'static str> {
    GROUPS
        .iter()
        .find(|g| g.contains(&key))
        .map(|g| g.iter().copied().filter(|t| *t != key).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deepsearch::offline::text::term_key;

    #[test]
    fn groups_are_symmetric_and_in_key_form() {
        for group in GROUPS {
            for t in *group {
                assert_eq!(term_key(t), *t, "{t} is not in term_key form");
                for other in related(t) {
                    assert!(related(other).contains(t), "{t} -> {other} is one-way");
                }
            }
        }
    }

    #[test]
    fn unrelated_words_have_none() {
        assert!(related("mutable").is_empty());
        assert!(related("").is_empty());
    }
}
