//! A node's lifecycle state as `GET /grid/nodes/{id}` reports it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node's lifecycle state in `GET /grid/nodes/{id}`. Our grid says one of the first three; a
/// seed grid may also say `unstaking`, and whatever else a grid says is kept as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeLifecycle {
    /// Heartbeating and not in maintenance.
    Active,
    /// No heartbeat within the node timeout.
    Offline,
    /// In maintenance (`sgl off-grid`).
    OffGrid,
    /// The operator's stake is cooling down (a seed grid's way to say it; ours says it in
    /// `stake_state`).
    Unstaking,
    /// A state this version does not know (`unknown` when the grid said none).
    Other(String),
}

impl NodeLifecycle {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Offline => "offline",
            Self::OffGrid => "off_grid",
            Self::Unstaking => "unstaking",
            Self::Other(other) => other,
        }
    }
}

impl std::fmt::Display for NodeLifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for NodeLifecycle {
    fn from(name: &str) -> Self {
        match name {
            "active" => Self::Active,
            "offline" => Self::Offline,
            "off_grid" => Self::OffGrid,
            "unstaking" => Self::Unstaking,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl Serialize for NodeLifecycle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NodeLifecycle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::from(String::deserialize(deserializer)?.as_str()))
    }
}
