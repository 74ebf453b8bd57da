//! Digests and job classes.

use super::*;

#[test]
fn digest_round_trips_and_refuses_other_spellings() {
    let digest = Digest::of(b"abc");
    let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(digest.to_string(), hex);
    assert_eq!(hex.parse::<Digest>().unwrap(), digest);
    assert_eq!(serde_json::to_string(&digest).unwrap(), format!("\"{hex}\""));
    assert!(hex.to_uppercase().parse::<Digest>().is_err());
    assert!(hex[..62].parse::<Digest>().is_err());
    assert!(serde_json::from_str::<Digest>("\"00\"").unwrap_err().to_string().contains("64 lowercase hex"));
}

#[test]
fn job_classes_parse_by_wire_name_only() {
    assert_eq!("wasm".parse::<JobClass>().unwrap(), JobClass::Wasm);
    assert_eq!("WASM".parse::<JobClass>().unwrap_err(), UnknownClass("WASM".to_owned()));
    assert_eq!(serde_json::to_string(&JobClass::Wasm).unwrap(), "\"wasm\"");
    assert!(JobClass::Wasm.is_deterministic());
}
