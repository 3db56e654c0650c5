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
        w.write_all(PythonFloat::new(value).as_str().as_bytes())
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
    out.push_str(PythonFloat::new(value).as_str());
}

/// Python's repr of one float, built on the stack: every message's timestamp goes
/// through here, so it allocates nothing.
struct PythonFloat {
    bytes: [u8; 40],
    len: usize,
}

impl PythonFloat {
    fn new(value: f64) -> Self {
        let mut f = PythonFloat {
            bytes: [0; 40],
            len: 0,
        };
        if value.is_nan() {
            f.push(b"NaN");
            return f;
        }
        if value.is_infinite() {
            f.push(if value > 0.0 {
                b"Infinity"
            } else {
                b"-Infinity"
            });
            return f;
        }
        if value.is_sign_negative() {
            f.push(b"-");
        }
        let mut ryu_buf = ryu::Buffer::new();
        let mut digits = [0u8; 24];
        let (n, decpt) = shortest_digits(ryu_buf.format_finite(value.abs()), &mut digits);
        let digits = &digits[..n];
        if digits.is_empty() {
            f.push(b"0.0");
            return f;
        }
        // Python's 'r' format switches to exponent form outside (-4, 16].
        if decpt > -4 && decpt <= 16 {
            let len = digits.len() as i32;
            if decpt <= 0 {
                f.push(b"0.");
                f.zeros((-decpt) as usize);
                f.push(digits);
            } else if decpt < len {
                f.push(&digits[..decpt as usize]);
                f.push(b".");
                f.push(&digits[decpt as usize..]);
            } else {
                f.push(digits);
                f.zeros((decpt - len) as usize);
                f.push(b".0");
            }
        } else {
            f.push(&digits[..1]);
            if digits.len() > 1 {
                f.push(b".");
                f.push(&digits[1..]);
            }
            let exp = decpt - 1;
            f.push(if exp < 0 { b"e-" } else { b"e+" });
            let abs = exp.unsigned_abs();
            if abs < 10 {
                f.push(b"0");
            }
            f.push(itoa::Buffer::new().format(abs).as_bytes());
        }
        f
    }

    fn push(&mut self, part: &[u8]) {
        self.bytes[self.len..self.len + part.len()].copy_from_slice(part);
        self.len += part.len();
    }

    fn zeros(&mut self, n: usize) {
        self.bytes[self.len..self.len + n].fill(b'0');
        self.len += n;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, signs, '.', 'e' and the non-finite names are ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("NaN")
    }
}

/// Copies the significant digits of ryu's output (`"1.5e-5"`, `"0.0001"`, `"123.0"`) into
/// `out`, without leading or trailing zeros, and returns their count and the decimal
/// point position: value = 0.DIGITS × 10^decpt.
fn shortest_digits(ryu: &str, out: &mut [u8; 24]) -> (usize, i32) {
    let (mantissa, exp) = match ryu.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (ryu, 0),
    };
    let mut point = mantissa.len();
    let mut leading = 0i32;
    let mut n = 0;
    for (i, b) in mantissa.bytes().enumerate() {
        if b == b'.' {
            point = i;
        } else if n == 0 && b == b'0' {
            leading += 1;
        } else if n < out.len() {
            out[n] = b;
            n += 1;
        }
    }
    while n > 0 && out[n - 1] == b'0' {
        n -= 1;
    }
    (n, point as i32 + exp - leading)
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
