//! JSON written byte-for-byte like Python's `json.dumps(value, ensure_ascii=False)`.
//!
//! The seed service builds every message with `json.dumps(..., ensure_ascii=False)`, and
//! clients of it compare or log those bytes. Python's defaults differ from serde_json's
//! compact output in two places: separators (`", "` and `": "`) and float formatting
//! (`1e+16`, `1e-05`, `1.0`). String escaping already agrees: both escape `"`, `\`, the
//! short forms `\b \f \n \r \t` and other C0 controls as lowercase `\u00XX`, and nothing else.

use std::io;

use serde::Serialize;

/// A [`serde_json::ser::Formatter`] with Python's default separators and float repr.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        let mut out = String::with_capacity(24);
        write_python_float(value, &mut out);
        w.write_all(out.as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        // Python has no f32: it would see the widened double.
        self.write_f64(w, f64::from(value))
    }
}

/// Serializes `value` into `buf` as Python's `json.dumps(value, ensure_ascii=False)` would.
///
/// One deliberate difference: serde_json writes non-finite floats as `null` where Python
/// writes `NaN`/`Infinity`, which is not JSON and breaks `JSON.parse` in browsers.
///
/// ```
/// use deepsearch_stream::json_compat::to_python_json;
/// let mut buf = Vec::new();
/// to_python_json(&serde_json::json!({"a": [1, 2.0, "é"], "b": 1e16}), &mut buf).unwrap();
/// assert_eq!(buf, r#"{"a": [1, 2.0, "é"], "b": 1e+16}"#.as_bytes());
/// ```
pub fn to_python_json<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let start = buf.len();
    let mut ser = serde_json::Serializer::with_formatter(&mut *buf, PythonFormatter);
    let result = value.serialize(&mut ser);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Appends the shortest round-tripping representation of `value` the way Python's
/// `float.__repr__` writes it. Non-finite values are written as `NaN`, `Infinity`,
/// `-Infinity` (Python's `allow_nan` spelling); callers that need strict JSON check first.
pub fn write_python_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if value.is_sign_negative() {
        out.push('-');
    }
    let mut ryu_buf = ryu::Buffer::new();
    let (digits, decpt) = shortest_digits(ryu_buf.format_finite(value.abs()));
    if digits.is_empty() {
        out.push_str("0.0");
        return;
    }
    // Python's 'r' format switches to exponent form outside (-4, 16].
    if decpt > -4 && decpt <= 16 {
        let len = digits.len() as i32;
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt < len {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - len) as usize));
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp = decpt - 1;
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    }
}

/// Splits ryu's output (`"1.5e-5"`, `"0.0001"`, `"123.0"`) into significant digits without
/// leading or trailing zeros, and the decimal point position: value = 0.DIGITS × 10^decpt.
fn shortest_digits(ryu: &str) -> (String, i32) {
    let (mantissa, exp) = match ryu.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (ryu, 0),
    };
    let point = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let all: String = mantissa.chars().filter(|c| *c != '.').collect();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all
        .trim_start_matches('0')
        .trim_end_matches('0')
        .to_string();
    (digits, point + exp - leading as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(v: f64) -> String {
        let mut s = String::new();
        write_python_float(v, &mut s);
        s
    }

    #[test]
    fn floats_match_python_repr() {
        // Expected strings are what CPython 3.11 prints for repr(x).
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1764220419.123456, "1764220419.123456"),
            (0.3, "0.3"),
            (2.0 / 3.0, "0.6666666666666666"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (v, want) in cases {
            assert_eq!(py(*v), *want, "repr of {v:e}");
        }
    }

    #[test]
    fn separators_and_escapes_match_python() {
        let value = serde_json::json!({
            "s": "line\nbreak \"q\" \\ \u{1}\u{7f} 开始搜索…",
            "n": [1, -2, 3.25, true, null, [], {}],
        });
        let mut buf = Vec::new();
        to_python_json(&value, &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"s\": \"line\\nbreak \\\"q\\\" \\\\ \\u0001\u{7f} 开始搜索…\", \"n\": [1, -2, 3.25, true, null, [], {}]}"
        );
    }

    #[test]
    fn error_leaves_buffer_untouched() {
        struct Bad;
        impl Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("nope"))
            }
        }
        let mut buf = b"keep".to_vec();
        assert!(to_python_json(&vec![Bad], &mut buf).is_err());
        assert_eq!(buf, b"keep");
    }
}
