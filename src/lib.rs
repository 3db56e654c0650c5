//! deepsearch-stream: a streaming core for AI search services.
//!
//! The core modules (`sse`, `message`, `stream`, `search`, ...) know nothing of
//! Python or HTTP serving; `python` (feature `python`) and `server` (feature `server`,
//! the axum server) are thin faces on top.

pub mod api;
pub mod config;
pub mod deepsearch;
pub mod http;
pub mod json_compat;
pub mod llm;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod proxy;
pub mod replay;
pub mod search;
#[cfg(feature = "server")]
pub mod server;
pub mod sse;
pub mod stream;
pub mod telemetry;

#[cfg(feature = "python")]
#[allow(unsafe_code)] // pyo3's macros expand to unsafe FFI glue
mod python;
