//! Language-model side of DeepSearch: the offline reasoning kit used when no
//! model is configured, and (later) the OpenAI-compatible streaming client.

pub mod offline;
