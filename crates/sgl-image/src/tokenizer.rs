//! The byte-level tokenizer of a `text-to-image` pipeline, simple enough to restate exactly:
//! the prompt's UTF-8 bytes, each byte `b` becoming id `b + 3`, between `BOS` (1) and `EOS` (2),
//! cut to `max_length - 2` bytes and padded with `PAD` (0) to `max_length` ids. The vocabulary
//! has 259 ids; a model trained with this scheme needs nothing else.

/// Padding after `EOS`.
pub const PAD: i64 = 0;
/// The first id.
pub const BOS: i64 = 1;
/// The id after the last byte.
pub const EOS: i64 = 2;
/// The id of byte 0; byte `b` is `BYTE_OFFSET + b`.
pub const BYTE_OFFSET: i64 = 3;
/// How many ids there are.
pub const VOCABULARY_SIZE: i64 = 259;

/// `prompt` as exactly `max_length` ids (`max_length` is at least 2).
pub fn tokenize(prompt: &str, max_length: usize) -> Vec<i64> {
    let max_length = max_length.max(2);
    let mut ids = Vec::with_capacity(max_length);
    ids.push(BOS);
    ids.extend(prompt.bytes().take(max_length - 2).map(|b| BYTE_OFFSET + i64::from(b)));
    ids.push(EOS);
    ids.resize(max_length, PAD);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_between_bos_and_eos_padded_and_cut() {
        assert_eq!(tokenize("Hi", 6), vec![1, 3 + 72, 3 + 105, 2, 0, 0]);
        assert_eq!(tokenize("", 2), vec![1, 2]);
        assert_eq!(tokenize("abcdef", 4), vec![1, 3 + 97, 3 + 98, 2]);
        // Bytes, not characters: "é" is two.
        assert_eq!(tokenize("é", 5), vec![1, 3 + 0xc3, 3 + 0xa9, 2, 0]);
        assert!(tokenize("\u{ff}x", 8).iter().all(|&id| id < VOCABULARY_SIZE));
    }
}
