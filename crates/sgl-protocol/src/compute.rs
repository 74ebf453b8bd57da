//! General compute: the signed job bundle a requester submits ([`bundle`]) and the signed
//! receipt a node returns for each slice it ran ([`receipt`]). Both are specified byte for byte
//! in `docs/protocol.md` §9 and §10.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::{DecodeError, hex_decode_array};

pub mod bundle;
pub mod receipt;
pub mod secrets;

/// What kind of work a job is; a node runs the classes it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobClass {
    /// A WebAssembly (WASI preview 1) command run by `sgl-sandbox`: deterministic, fuel-metered.
    Wasm,
    /// Chat inference in deterministic mode: one prompt per slice, greedy decoding of a model
    /// pinned by its GGUF's SHA-256 on a node's own slot, so redundant nodes give the same text.
    Llm,
    /// Small training in the Wasm sandbox: slices are epochs run in order, each resumed from the
    /// previous epoch's accepted checkpoint (under `/in/prev/`), each a milestone paid on its own.
    Train,
    /// Image generation: the `sgl-image` worker (ONNX Runtime) under the native sandbox; the
    /// entry is a `pipeline.json`, redundant runs agree on decoded pixels.
    Image,
    /// Rendering: headless Blender (Cycles on CPU) under the native sandbox; the entry is a
    /// `.blend` scene, each slice a frame or a band of rows, compared by decoded pixels.
    Render,
}

/// How a class's work is run on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// A WASI module in the Wasm sandbox, metered in fuel.
    Wasm,
    /// The node's own llama.cpp engine.
    Engine,
    /// A native engine binary under the native (bubblewrap) sandbox.
    Native,
}

impl JobClass {
    /// Every class, in the order nodes list them.
    pub const ALL: [JobClass; 5] = [JobClass::Wasm, JobClass::Llm, JobClass::Train, JobClass::Image, JobClass::Render];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobClass::Wasm => "wasm",
            JobClass::Llm => "llm",
            JobClass::Train => "train",
            JobClass::Image => "image",
            JobClass::Render => "render",
        }
    }

    /// How its work runs.
    pub const fn runtime(self) -> Runtime {
        match self {
            JobClass::Wasm | JobClass::Train => Runtime::Wasm,
            JobClass::Llm => Runtime::Engine,
            JobClass::Image | JobClass::Render => Runtime::Native,
        }
    }

    /// Whether slices run one after another, each given the previous slice's accepted outputs.
    pub const fn is_chained(self) -> bool {
        matches!(self, JobClass::Train)
    }

    /// Whether outputs are compared by their decoded pixels (PNG files) rather than their bytes.
    pub const fn compares_pixels(self) -> bool {
        matches!(self, JobClass::Image | JobClass::Render)
    }

    /// Whether two honest runs give the same bytes and the same metered work, so a dissenting
    /// receipt is provably wrong. Native engines pinned to one version agree bit for bit on one
    /// CPU class but are not proven to across classes, so their dissent costs reputation only.
    pub const fn is_deterministic(self) -> bool {
        match self {
            JobClass::Wasm | JobClass::Llm | JobClass::Train => true,
            JobClass::Image | JobClass::Render => false,
        }
    }
}

impl fmt::Display for JobClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class name no version of the protocol knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job class {0:?} (known: wasm, llm, train, image, render)")]
pub struct UnknownClass(pub String);

impl FromStr for JobClass {
    type Err = UnknownClass;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JobClass::ALL.into_iter().find(|class| class.as_str() == text).ok_or_else(|| UnknownClass(text.to_owned()))
    }
}

/// A SHA-256 digest, written as 64 lowercase hex characters: how blobs, bundles, inputs and
/// outputs are named.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: impl AsRef<[u8]>) -> Self {
        Self(crate::encoding::sha256(bytes))
    }

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Digest {
    type Err = DecodeError;

    /// Only the canonical form: exactly 64 lowercase hex characters.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !crate::encoding::is_sha256_hex(text) {
            return Err(DecodeError::Hex);
        }
        hex_decode_array::<32>(text).map(Self)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| serde::de::Error::custom("expected a SHA-256 digest as 64 lowercase hex characters"))
    }
}

#[cfg(test)]
mod tests;
