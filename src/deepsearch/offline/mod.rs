//! The offline reasoning kit: planner, reasoner and answer builder that need
//! no model and no network, so DeepSearch works on a fresh offline machine.
//!
//! Everything here is pure and deterministic: the same input always gives
//! the same output, which keeps the offline path testable and cacheable.
//!
//! ```
//! use deepsearch_stream::deepsearch::offline::{assess, build_answer, plan};
//! use deepsearch_stream::deepsearch::PlanHistory;
//! use deepsearch_stream::search::Document;
//!
//! let query = "What is Tokio?";
//! let mut history = PlanHistory::new();
//! let queries = plan(query, 1, &history, 3);
//! assert_eq!(queries[0], "What is Tokio?");
//! let docs = vec![Document {
//!     title: "Tokio".into(),
//!     url: "https://tokio.rs".into(),
//!     snippet: String::new(),
//!     content: "Tokio is an asynchronous runtime for Rust.".into(),
//!     score: 1.0,
//! }];
//! let verdict = assess(query, &docs);
//! assert!(verdict.is_answer);
//! history.record(queries.clone(), docs.clone());
//! history.apply(&verdict);
//! let answer = build_answer(query, &queries, &docs, 3);
//! assert_eq!(answer.text, "Tokio is an asynchronous runtime for Rust. [1]");
//! ```

pub mod answer;
pub mod planner;
mod prose;
pub mod reasoner;
pub mod synonyms;
pub mod text;

pub use answer::{build_answer, Answer, NO_ANSWER};
pub use planner::plan;
pub use reasoner::{assess, Assessment, ANSWER_COVERAGE, ASSESS_TOP_K};
pub use text::{normalize_query, split_sentences, tokenize, word_pieces};
