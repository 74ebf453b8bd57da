//! Identifiers as newtypes, so a node id can never be passed where a job id is expected, and
//! bearer secrets (node tokens, API keys) that never print themselves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;
use zeroize::Zeroize;

/// An identifier that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// A node id must be a UUID (dashed or undashed), because the keybind carries its 16 bytes.
    #[error("node id is not a UUID: {0:?}")]
    NodeId(String),
    /// A job id must be 1..=128 printable ASCII characters without whitespace, because it is a
    /// line of the signed result envelope and a path segment.
    #[error("job id must be 1 to 128 printable ASCII characters without whitespace")]
    JobId,
}

/// A node's identity on the grid: a UUID issued at registration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Uuid);

impl NodeId {
    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// A fresh random (v4) node id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The 16 raw bytes, as bound into the keybind.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl FromStr for NodeId {
    type Err = ParseIdError;

    /// Accepts the dashed and the undashed 32-hex-digit forms, as the seed node does.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let is_simple_or_hyphenated = matches!(trimmed.len(), 32 | 36);
        match Uuid::try_parse(trimmed) {
            Ok(uuid) if is_simple_or_hyphenated => Ok(Self(uuid)),
            _ => Err(ParseIdError::NodeId(text.to_owned())),
        }
    }
}

impl fmt::Display for NodeId {
    /// The lowercase dashed form, which is what every signed message uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A job's identity. Seed grids use UUID strings; the id is kept as the exact string received
/// because the result envelope signs the raw id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh random job id (a v4 UUID string).
    pub fn random() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// The id as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for JobId {
    type Err = ParseIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        if valid { Ok(Self(text.to_owned())) } else { Err(ParseIdError::JobId) }
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

/// Declares a bearer secret held as a string: transparent on the wire, redacted in `Debug`,
/// zeroised on drop, and readable only through an explicit `expose_secret`.
macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// The secret itself; call only where it must be sent or stored.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }
    };
}

secret_string!(
    /// The opaque bearer token a node receives at registration (`X-Node-Auth`). It rotates.
    AuthToken
);
secret_string!(
    /// A caller's API key (`x402c_…`), sent as `Authorization: Bearer` and `X-API-Key`.
    ApiKey
);
secret_string!(
    /// A single-use registration (provision) code, bound to one wallet.
    RegistrationCode
);

/// A reservation handed out by `/v1/reserve`; it names one node for one sealed request.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReservationToken(String);

impl ReservationToken {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ReservationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReservationToken({})", self.0)
    }
}

#[cfg(test)]
mod tests;
