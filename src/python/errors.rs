//! The Python exception tree: one base class, and the single mapping from core errors.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

use crate::deepsearch::DeepSearchError;
use crate::proxy::ProxyError;
use crate::stream::StreamError;

create_exception!(
    deepsearch_stream,
    DeepSearchStreamError,
    PyException,
    "Base class of every error raised by deepsearch_stream."
);
create_exception!(
    deepsearch_stream,
    StreamClosedError,
    DeepSearchStreamError,
    "The stream can take no more messages: its consumer went away or it already ended."
);
create_exception!(
    deepsearch_stream,
    StreamTimeoutError,
    StreamClosedError,
    "The stream reached its timeout."
);
create_exception!(
    deepsearch_stream,
    EncodeError,
    DeepSearchStreamError,
    "A message could not be encoded."
);
create_exception!(
    deepsearch_stream,
    DecodeError,
    DeepSearchStreamError,
    "An SSE stream broke the decoder's line or event size limit."
);
create_exception!(
    deepsearch_stream,
    ConfigError,
    DeepSearchStreamError,
    "An option is out of range or malformed."
);

impl From<StreamError> for PyErr {
    fn from(e: StreamError) -> PyErr {
        let text = e.to_string();
        match e {
            StreamError::ConsumerGone | StreamError::Ended => StreamClosedError::new_err(text),
            StreamError::TimedOut => StreamTimeoutError::new_err(text),
            StreamError::Encode(_) => EncodeError::new_err(text),
            StreamError::Config(_) => ConfigError::new_err(text),
        }
    }
}

create_exception!(
    deepsearch_stream,
    InvalidRequestError,
    DeepSearchStreamError,
    "A search request is malformed or out of range; the message names the field."
);
create_exception!(
    deepsearch_stream,
    SearchEngineError,
    DeepSearchStreamError,
    "A search engine could not be set up (unknown name, missing key or URL, unreadable corpus)."
);
create_exception!(
    deepsearch_stream,
    LlmError,
    DeepSearchStreamError,
    "The language model failed (unreachable, rejected the key, context too long, ...)."
);

impl From<DeepSearchError> for PyErr {
    fn from(e: DeepSearchError) -> PyErr {
        let text = e.to_string();
        match e {
            DeepSearchError::InvalidRequest { .. } => InvalidRequestError::new_err(text),
            DeepSearchError::InvalidSetting { .. } => ConfigError::new_err(text),
            DeepSearchError::Engine { .. } => SearchEngineError::new_err(text),
            DeepSearchError::Llm(_) => LlmError::new_err(text),
            DeepSearchError::Closed => StreamClosedError::new_err(text),
            DeepSearchError::TimedOut => StreamTimeoutError::new_err(text),
            _ => DeepSearchStreamError::new_err(text),
        }
    }
}

impl From<ProxyError> for PyErr {
    fn from(e: ProxyError) -> PyErr {
        // A bad upstream URL or header is a malformed option like any other.
        match e {
            ProxyError::Stream(e) => e.into(),
            ProxyError::InvalidUrl { .. }
            | ProxyError::UnsupportedScheme(_)
            | ProxyError::InvalidHeader { .. }
            | ProxyError::InvalidOption(_) => ConfigError::new_err(e.to_string()),
            _ => DeepSearchStreamError::new_err(e.to_string()),
        }
    }
}
