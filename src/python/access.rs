//! `Access` for Python: the API key and CORS policy both servers put in front of every
//! route, for an ASGI middleware to ask.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::ConfigError;
use crate::api::{Access, AccessError, RequestHead};
use crate::http::Secret;

/// The access policy of a server; see the class docstring in `_core.pyi`.
#[pyclass(module = "deepsearch_stream._core", name = "Access", frozen)]
pub struct PyAccess {
    inner: Access,
}

type Headers = Vec<(&'static str, String)>;

impl From<AccessError> for PyErr {
    fn from(e: AccessError) -> PyErr {
        ConfigError::new_err(e.to_string())
    }
}

#[pymethods]
impl PyAccess {
    #[new]
    #[pyo3(signature = (*, api_key = None, cors_origins = None, api_keys = None, api_key_file = None))]
    fn new(
        api_key: Option<&str>,
        cors_origins: Option<&str>,
        api_keys: Option<Vec<String>>,
        api_key_file: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let mut keys: Vec<Secret> = api_key.into_iter().map(Secret::from).collect();
        keys.extend(api_keys.unwrap_or_default().into_iter().map(Secret::from));
        if let Some(path) = &api_key_file {
            keys.extend(crate::api::read_key_file(path)?);
        }
        Ok(PyAccess {
            inner: Access::with_keys(keys, cors_origins)?,
        })
    }

    /// Whether a key or CORS is configured at all.
    #[getter]
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    #[pyo3(signature = (method, path, authorization = None, origin = None, request_method = None))]
    fn check<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        path: &str,
        authorization: Option<&[u8]>,
        origin: Option<&[u8]>,
        request_method: Option<&[u8]>,
    ) -> Option<(u16, Headers, Bound<'py, PyBytes>)> {
        let head = RequestHead {
            method,
            path,
            authorization,
            origin,
            request_method,
        };
        self.inner
            .check(&head)
            .map(|a| (a.status, a.headers, PyBytes::new(py, &a.body)))
    }

    #[pyo3(signature = (origin = None))]
    fn response_headers(&self, origin: Option<&[u8]>) -> Headers {
        self.inner.response_headers(origin)
    }

    fn __repr__(&self) -> String {
        // Debug of the core type redacts the key.
        format!("{:?}", self.inner)
    }
}

/// True when `request_id` is 1 to 128 characters from `A-Z a-z 0-9 . _ : -`: the
/// check every route applies before an id reaches logs, SSE ids or storage keys.
#[pyfunction]
pub fn valid_request_id(request_id: &str) -> bool {
    crate::api::valid_request_id(request_id)
}
