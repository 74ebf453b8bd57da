//! RFC 8785 JSON Canonicalization Scheme (JCS) for `serde_json::Value`: object members sorted
//! by the UTF-16 code units of their names, no whitespace, strings escaped as ECMAScript's
//! `JSON.stringify` does, numbers in ECMAScript's shortest form.
//!
//! MPP encodes a challenge's `request` (and `opaque`) as base64url of this form, so that the
//! HMAC-bound challenge id is the same whoever serializes the object.
//!
//! Integers are written as they are, even beyond 2^53 (where JCS proper would write the
//! nearest double); amounts in MPP are decimal strings, so this does not arise there.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// The JCS form of `value`.
pub fn canonicalize(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut members: Vec<(&String, &Value)> = members.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (idx, (name, member)) in members.into_iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                write_string(out, name);
                out.push(':');
                write_value(out, member);
            }
            out.push('}');
        }
    }
}

/// A JSON string as ECMAScript writes it: only `"`, `\` and control characters are escaped.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            control if u32::from(control) < 0x20 => {
                write!(out, "\\u{:04x}", u32::from(control)).expect("writing to a String cannot fail");
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, number: &Number) {
    if let Some(unsigned) = number.as_u64() {
        write!(out, "{unsigned}").expect("writing to a String cannot fail");
    } else if let Some(signed) = number.as_i64() {
        write!(out, "{signed}").expect("writing to a String cannot fail");
    } else if let Some(float) = number.as_f64() {
        write_double(out, float);
    }
}

/// ECMAScript `Number.prototype.toString` for a finite double (serde_json holds no NaN or
/// infinity): the shortest round-tripping digits, plain between 1e-7 and 1e21, otherwise
/// `d.ddde±x`.
fn write_double(out: &mut String, float: f64) {
    if float == 0.0 {
        out.push('0');
        return;
    }
    if float < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` without a precision prints the shortest digits that round-trip.
    let scientific = format!("{:e}", float.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` always has an exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().expect("`{:e}` exponents are integers");
    let n_digits = i32::try_from(digits.len()).expect("a double has at most 17 significant digits");
    // The decimal point sits after the first `point` digits (ECMA-262's n).
    let point = exponent + 1;
    if n_digits <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - n_digits) as usize));
    } else if 0 < point && point <= 21 {
        let (whole, fraction) = digits.split_at(point as usize);
        write!(out, "{whole}.{fraction}").expect("writing to a String cannot fail");
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        write!(out, "e{sign}{}", exponent.unsigned_abs()).expect("writing to a String cannot fail");
    }
}
