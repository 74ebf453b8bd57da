//! Tests for identifier parsing and secret redaction.

use super::*;

#[test]
fn node_id_accepts_dashed_and_undashed_and_prints_dashed() {
    let dashed: NodeId = "f617ee39-17e3-4904-9474-112446c9326a".parse().unwrap();
    let simple: NodeId = "F617EE3917E349049474112446C9326A".parse().unwrap();
    assert_eq!(dashed, simple);
    assert_eq!(simple.to_string(), "f617ee39-17e3-4904-9474-112446c9326a");
    assert_eq!(dashed.as_bytes()[0], 0xf6);
}

#[test]
fn node_id_rejects_other_forms() {
    for bad in
        ["", "not-a-uuid", "{f617ee39-17e3-4904-9474-112446c9326a}", "urn:uuid:f617ee39-17e3-4904-9474-112446c9326a"]
    {
        assert!(bad.parse::<NodeId>().is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn job_id_refuses_separators_that_would_forge_envelope_lines() {
    assert!("00000000-0000-0000-0000-000000000001".parse::<JobId>().is_ok());
    for bad in ["", "a\nb", "a b", "é", &"x".repeat(129)] {
        assert!(bad.parse::<JobId>().is_err(), "{bad:?} must be refused");
    }
    assert!(serde_json::from_str::<JobId>("\"a\\nplain\"").is_err());
}

#[test]
fn secrets_redact_in_debug_and_stay_transparent_on_the_wire() {
    let token = AuthToken::new("tok_secret_value");
    assert_eq!(format!("{token:?}"), "AuthToken(<redacted>)");
    assert_eq!(serde_json::to_string(&token).unwrap(), "\"tok_secret_value\"");
    let key: ApiKey = serde_json::from_str("\"x402c_abc\"").unwrap();
    assert_eq!(key.expose_secret(), "x402c_abc");
    assert!(!format!("{key:?}").contains("abc"));
}
