//! The Python exception tree: one base class, and the single mapping from core errors.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

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
