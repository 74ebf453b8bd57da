//! Machines rented by the hour (issue 18): the states a machine goes through and why one ended,
//! which every view of a machine carries. The routes and their bodies follow as they land.

use serde::{Deserialize, Serialize};

/// Where a rented machine stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    /// Paid for and being made; nothing is charged until it answers SSH.
    Pending,
    /// Reachable by SSH, more than a day of prepaid time left.
    Active,
    /// Reachable, at most a day left (the 24 h and 1 h warnings fall here).
    Expiring,
    /// Its time ran out: stopped, its disk kept until the grace period ends.
    Expired,
    /// Gone, with nothing left of it on the provider.
    Destroyed,
}

impl MachineState {
    /// The state's name on the wire and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Destroyed => "destroyed",
        }
    }

    /// The state a name stands for, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Expiring, Self::Expired, Self::Destroyed]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// Why a machine ended, recorded once, when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its renter destroyed it.
    DestroyedByUser,
    /// Its prepaid time and the grace period after it ran out.
    Expired,
    /// The provider refused to make it (refunded in full).
    ProviderRejected,
    /// The provider failed while making it (refunded in full).
    ProviderFailed,
    /// It did not answer SSH before the deadline (destroyed and refunded in full).
    NotReachable,
}

impl EndReason {
    /// The reason's name on the wire and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DestroyedByUser => "destroyed_by_user",
            Self::Expired => "expired",
            Self::ProviderRejected => "provider_rejected",
            Self::ProviderFailed => "provider_failed",
            Self::NotReachable => "not_reachable",
        }
    }

    /// Whether the renter gets all of its payment back: the machine never served.
    pub const fn refunds_in_full(self) -> bool {
        matches!(self, Self::ProviderRejected | Self::ProviderFailed | Self::NotReachable)
    }
}

#[cfg(test)]
mod tests {
    //! The names of states and end reasons.

    use super::*;

    #[test]
    fn states_and_reasons_are_their_wire_names() {
        for state in [
            MachineState::Pending,
            MachineState::Active,
            MachineState::Expiring,
            MachineState::Expired,
            MachineState::Destroyed,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(MachineState::from_name(state.as_str()), Some(state));
        }
        assert_eq!(MachineState::from_name("running"), None);
        assert_eq!(serde_json::to_value(EndReason::NotReachable).unwrap(), "not_reachable");
        assert!(EndReason::ProviderRejected.refunds_in_full() && !EndReason::DestroyedByUser.refunds_in_full());
    }
}
