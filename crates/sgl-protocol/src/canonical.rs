//! The canonical encoder behind every signed layout we define (`docs/protocol.md` §3): a domain
//! tag, then each field in a fixed order; a string is its UTF-8 length as u32 big-endian followed
//! by the bytes, an integer is u64 big-endian, a list is its length as u32 big-endian followed by
//! its items, and an absent optional is encoded as the empty string.

/// Bytes being built for signing.
pub(crate) struct Canonical(Vec<u8>);

impl Canonical {
    /// Starts with the domain tag.
    pub(crate) fn new(domain: &[u8]) -> Self {
        Self(domain.to_vec())
    }

    /// A length-prefixed UTF-8 string.
    pub(crate) fn string(&mut self, text: &str) {
        self.count(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    /// A u64, big-endian.
    pub(crate) fn integer(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    /// A list length (or string length), as u32 big-endian.
    pub(crate) fn count(&mut self, n: usize) {
        let n = u32::try_from(n).expect("signed fields are far below 4 GiB");
        self.0.extend_from_slice(&n.to_be_bytes());
    }

    /// The bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}
