//! Deserialisers for fields whose type the seed leaves open, so that one odd value does not
//! discard the rest of a body.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads any JSON value as a flag: null, false, 0 and "" are false; anything else is true.
pub(super) fn truthy<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Null => false,
        Value::Bool(flag) => flag,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    })
}
