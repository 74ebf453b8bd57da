//! JSON request bodies: [`AppJson`], whose rejections are OpenAI-shaped errors, and the one
//! leniency the grid allows in them: a whole number written as a float (`2.0`) is read where an
//! integer is expected, because JSON Schema (and so the OpenAPI document) says `2.0` is the
//! integer 2. The strict parse runs first; only a body it refuses is parsed again.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use crate::error::ApiError;

/// JSON body whose rejections become OpenAI-shaped errors.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::not_json());
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large()
            } else {
                ApiError::bad_request(rejection.body_text())
            }
        })?;
        parse(&bytes).map(Self)
    }
}

/// `application/json` or a structured `+json` type, as axum's `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as `T`, reading whole floats as integers when the strict parse fails.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object; serde would also read a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{') {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let rejection = match Json::<T>::from_bytes(bytes) {
        Ok(Json(value)) => return Ok(value),
        Err(rejection) => rejection,
    };
    let retried = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|mut value| whole_floats_to_integers(&mut value).then_some(value))
        .and_then(|value| serde_json::from_value(value).ok());
    retried.ok_or_else(|| ApiError::bad_request(rejection.body_text()))
}

/// Reads `value` as `T`, reading whole floats as integers when the strict read fails.
pub(crate) fn from_value<T: DeserializeOwned>(mut value: Value) -> Result<T, serde_json::Error> {
    let error = match T::deserialize(&value) {
        Ok(read) => return Ok(read),
        Err(error) => error,
    };
    if whole_floats_to_integers(&mut value) { serde_json::from_value(value) } else { Err(error) }
}

/// Rewrites every float with no fractional part (within ±2⁵³, where floats are exact) as an
/// integer; returns whether anything changed.
pub(crate) fn whole_floats_to_integers(value: &mut Value) -> bool {
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            let exact = float.fract() == 0.0 && float.abs() <= 9_007_199_254_740_992.0;
            // The cast is exact: the value is whole and within ±2^53.
            #[allow(clippy::cast_possible_truncation)]
            let whole = exact.then(|| Number::from(float as i64));
            whole.map(|integer| *number = integer).is_some()
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| whole_floats_to_integers(item) | changed),
        Value::Object(map) => map.values_mut().fold(false, |changed, item| whole_floats_to_integers(item) | changed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Sample {
        count: u32,
        ratio: f64,
    }

    #[test]
    fn a_whole_float_is_read_as_an_integer_and_a_fraction_is_still_refused() {
        let read: Sample = parse(br#"{"count": 7.0, "ratio": 0.5}"#).expect("7.0 is the integer 7");
        assert_eq!(read, Sample { count: 7, ratio: 0.5 });
        let refused = parse::<Sample>(br#"{"count": 7.5, "ratio": 0.5}"#).expect_err("7.5 is no integer");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.to_string().contains("count"), "the error names the field: {refused}");
    }

    #[test]
    fn a_value_with_a_whole_float_is_read_and_a_fraction_keeps_its_error() {
        let read: Sample = from_value(serde_json::json!({"count": 3.0, "ratio": 1.0})).expect("3.0 is 3");
        assert_eq!(read, Sample { count: 3, ratio: 1.0 });
        let error =
            from_value::<Sample>(serde_json::json!({"count": 3.5, "ratio": 1.0})).expect_err("3.5 is no integer");
        assert!(error.to_string().contains("3.5"), "{error}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_though_serde_would_read_a_struct_from_an_array() {
        let refused = parse::<Sample>(b" [7, 0.5]").expect_err("an array is no request body");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.to_string().contains("JSON object"), "{refused}");
    }

    #[test]
    fn floats_past_two_to_the_53_are_left_alone() {
        let mut value = serde_json::json!({"big": 1e300, "list": [2.0, 2.5]});
        assert!(whole_floats_to_integers(&mut value));
        assert_eq!(value, serde_json::json!({"big": 1e300, "list": [2, 2.5]}));
    }
}
