//! What earlier rounds of the loop did: the state the planners (offline or model) read.

use super::offline::{normalize_query, Assessment};
use crate::search::Document;

/// What earlier rounds did, as the planner needs to see it.
///
/// ```
/// use deepsearch_stream::deepsearch::PlanHistory;
/// let mut h = PlanHistory::new();
/// h.record(["rust async"], Vec::new());
/// assert!(h.was_searched("Rust  ASYNC?"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanHistory {
    /// Every query already sent to a search engine, in any round.
    pub searched: Vec<String>,
    /// Documents found so far; their title and text show what is covered.
    pub documents: Vec<Document>,
    /// Key terms of the user's query that the documents do not cover yet.
    /// When empty, the planner works them out from `documents` itself.
    pub missing_terms: Vec<String>,
    /// A rewrite of the user's query suggested by the reasoner.
    pub rewrite_query: Option<String>,
}

impl PlanHistory {
    /// An empty history (nothing searched yet).
    ///
    /// ```
    /// assert!(deepsearch_stream::deepsearch::PlanHistory::new().searched.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one round's queries and the documents they found.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::PlanHistory;
    /// let mut h = PlanHistory::new();
    /// h.record(vec!["a".to_string()], Vec::new());
    /// assert_eq!(h.searched, ["a"]);
    /// ```
    pub fn record<I, S>(&mut self, queries: I, documents: Vec<Document>)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.searched.extend(queries.into_iter().map(Into::into));
        self.documents.extend(documents);
    }

    /// Takes the gaps and the rewrite suggestion from a reasoner verdict.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::{offline::assess, PlanHistory};
    /// let mut h = PlanHistory::new();
    /// h.apply(&assess("rust tokio", &[]));
    /// assert_eq!(h.missing_terms, ["rust", "tokio"]);
    /// ```
    pub fn apply(&mut self, assessment: &Assessment) {
        self.missing_terms.clone_from(&assessment.missing_terms);
        self.rewrite_query.clone_from(&assessment.rewrite_query);
    }

    /// True when `query` normalizes to an already searched query.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::PlanHistory;
    /// let mut h = PlanHistory::new();
    /// h.record(["Tokio runtime"], Vec::new());
    /// assert!(h.was_searched("tokio, runtime!"));
    /// assert!(!h.was_searched("tokio"));
    /// ```
    pub fn was_searched(&self, query: &str) -> bool {
        let n = normalize_query(query);
        self.searched.iter().any(|s| normalize_query(s) == n)
    }
}
