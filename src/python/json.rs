//! Python objects written as JSON through serde, without building an intermediate tree.
//!
//! Accepts what `json.dumps` accepts by default (dict, list, tuple, str, int, float, bool,
//! None; dict keys that are str, int, float, bool or None) and fails like it: `TypeError`
//! for other types, `ValueError` for circular or absurdly deep data. Non-finite floats are
//! refused (`ValueError`) because the result must parse in browsers.

use std::cell::RefCell;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::json_compat::write_python_float;

/// Deeper than any real message; stops reference cycles before the stack does.
const MAX_DEPTH: usize = 200;

/// A borrowed Python object that serializes as JSON. The first Python-level error is kept
/// in `error` so the caller can raise it instead of a generic serde message.
pub struct PyJson<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: usize,
    error: &'a RefCell<Option<PyErr>>,
}

impl<'a, 'py> PyJson<'a, 'py> {
    pub fn new(obj: &'a Bound<'py, PyAny>, error: &'a RefCell<Option<PyErr>>) -> Self {
        PyJson {
            obj,
            depth: 0,
            error,
        }
    }

    fn child(&self, obj: &'a Bound<'py, PyAny>) -> PyJson<'a, 'py> {
        PyJson {
            obj,
            depth: self.depth + 1,
            error: self.error,
        }
    }

    fn fail<E: serde::ser::Error>(&self, err: PyErr) -> E {
        let text = err.to_string();
        self.error.borrow_mut().get_or_insert(err);
        E::custom(text)
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn key_string(key: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = key.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if key.is_none() {
        return Ok("null".to_owned());
    }
    if let Ok(b) = key.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_owned());
    }
    if key.is_instance_of::<PyInt>() {
        return Ok(key.str()?.to_str()?.to_owned());
    }
    if let Ok(f) = key.cast::<PyFloat>() {
        let mut s = String::new();
        write_python_float(f.value(), &mut s);
        return Ok(s);
    }
    Err(PyTypeError::new_err(format!(
        "keys must be str, int, float, bool or None, not {}",
        type_name(key)
    )))
}

impl Serialize for PyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        if self.depth > MAX_DEPTH {
            return Err(self.fail(PyValueError::new_err(format!(
                "data nested deeper than {MAX_DEPTH} levels (circular reference?)"
            ))));
        }
        if let Ok(s) = obj.cast::<PyString>() {
            let text = s.to_str().map_err(|e| self.fail(e))?;
            return ser.serialize_str(text);
        }
        if obj.is_none() {
            return ser.serialize_unit();
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return ser.serialize_bool(b.is_true());
        }
        if obj.is_instance_of::<PyInt>() {
            if let Ok(v) = obj.extract::<i64>() {
                return ser.serialize_i64(v);
            }
            if let Ok(v) = obj.extract::<u64>() {
                return ser.serialize_u64(v);
            }
            return Err(self.fail(PyValueError::new_err("int does not fit in 64 bits")));
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            let v = f.value();
            if !v.is_finite() {
                return Err(self.fail(PyValueError::new_err(format!(
                    "out of range float value {v} is not valid JSON"
                ))));
            }
            return ser.serialize_f64(v);
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            let mut map = ser.serialize_map(Some(d.len()))?;
            for (k, v) in d.iter() {
                let key = key_string(&k).map_err(|e| self.fail::<S::Error>(e))?;
                map.serialize_entry(&key, &self.child(&v))?;
            }
            return map.end();
        }
        if let Ok(l) = obj.cast::<PyList>() {
            let mut seq = ser.serialize_seq(Some(l.len()))?;
            for item in l.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            let mut seq = ser.serialize_seq(Some(t.len()))?;
            for item in t.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        Err(self.fail(PyTypeError::new_err(format!(
            "Object of type {} is not JSON serializable",
            type_name(obj)
        ))))
    }
}

/// Turns a serde failure back into the Python error that caused it, if there was one.
pub fn take_error(slot: &RefCell<Option<PyErr>>, fallback: impl FnOnce() -> PyErr) -> PyErr {
    slot.borrow_mut().take().unwrap_or_else(fallback)
}
