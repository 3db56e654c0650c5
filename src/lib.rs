//! deepsearch-stream: a streaming core for AI search services.
//!
//! The core modules (`sse`, `message`, `stream`, `search`, ...) know nothing of
//! Python or HTTP serving; `python` (feature `python`) is a thin face on top.

pub mod llm;
pub mod search;
