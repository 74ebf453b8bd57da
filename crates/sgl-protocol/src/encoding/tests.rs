//! Base58 must give exactly the strings of the reference codec (the `bs58` crate, which the
//! seed node and SDKs use), and refuse what it refuses.

use proptest::prelude::*;

use super::*;

#[test]
fn edge_cases_match_the_reference() {
    for bytes in [&[][..], &[0], &[0, 0, 0], &[0, 0, 1], &[0xff; 40], &[0, 0xff, 0]] {
        assert_eq!(b58_encode(bytes), bs58::encode(bytes).into_string(), "{bytes:?}");
        assert_eq!(b58_decode(&b58_encode(bytes)).unwrap(), bytes);
    }
    assert_eq!(b58_encode([0x42; 32]), bs58::encode([0x42; 32]).into_string());
}

#[test]
fn characters_outside_the_alphabet_are_refused() {
    for bad in ["0", "O", "I", "l", "abc+", "é", " 1", "1\n"] {
        assert_eq!(b58_decode(bad), Err(DecodeError::Base58), "{bad:?}");
        assert!(bs58::decode(bad).into_vec().is_err());
    }
    assert_eq!(b58_decode_array::<32>("1"), Err(DecodeError::Length { expected: 32, actual: 1 }));
}

#[test]
fn hex_helpers() {
    assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert!(is_sha256_hex(&sha256_hex(b"x")));
    assert!(!is_sha256_hex(&sha256_hex(b"x").to_uppercase()));
    assert_eq!(hex_decode_array::<2>("ABcd"), Ok([0xab, 0xcd]));
    assert_eq!(hex_decode_array::<2>("abc"), Err(DecodeError::Hex));
}

proptest! {
    #[test]
    fn encoding_matches_the_reference(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                      n_zeros in 0usize..4) {
        let mut bytes = bytes;
        bytes.splice(0..0, std::iter::repeat_n(0, n_zeros));
        let text = b58_encode(&bytes);
        prop_assert_eq!(&text, &bs58::encode(&bytes).into_string());
        prop_assert_eq!(b58_decode(&text).unwrap(), bytes);
    }

    #[test]
    fn decoding_matches_the_reference(text in "[1-9A-HJ-NP-Za-km-z]{0,300}") {
        prop_assert_eq!(b58_decode(&text).unwrap(), bs58::decode(&text).into_vec().unwrap());
    }
}
