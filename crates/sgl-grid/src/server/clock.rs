//! Where an HTTP/1 connection stands between requests, and so when it must be closed for
//! sending nothing useful: a pure state machine over explicit instants, tested without sockets.
//!
//! hyper's own `header_read_timeout` also runs between keep-alive requests, so it cannot give
//! a new or half-sent request head a short deadline and an idle keep-alive connection a long
//! one. This clock does both: the connection's reads report bytes, its service reports each
//! request's start and the end of its response body, and a watchdog asks for the deadline.

use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::ConnectionTimeout;

/// The two timeouts the clock applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeouts {
    /// How long a request head may take, from the connection's start or from the first byte
    /// of a later request.
    pub(super) header_read: Duration,
    /// How long a keep-alive connection may wait, after a response, for the next request to
    /// begin.
    pub(super) idle: Duration,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading a request head that began at `since` (for a new connection: when it opened).
    ReadingHead {
        /// When the head began.
        since: Instant,
    },
    /// Serving requests: `in_flight` of them have not finished sending their response.
    Busy {
        /// Requests whose response body is not yet fully sent.
        in_flight: u32,
    },
    /// Waiting, since `since`, for the first byte of the next request.
    Idle {
        /// When the last response was sent.
        since: Instant,
    },
}

impl Phase {
    /// A connection that has just opened: its first head is due within the header timeout.
    pub(super) fn opened(now: Instant) -> Self {
        Self::ReadingHead { since: now }
    }

    /// Bytes arrived: an idle connection starts reading a head (request body bytes change
    /// nothing).
    #[must_use]
    pub(super) fn bytes_read(self, now: Instant) -> Self {
        match self {
            Self::Idle { .. } => Self::ReadingHead { since: now },
            other => other,
        }
    }

    /// A request head was complete and its request is being served.
    #[must_use]
    pub(super) fn request_started(self) -> Self {
        match self {
            Self::Busy { in_flight } => Self::Busy { in_flight: in_flight.saturating_add(1) },
            Self::ReadingHead { .. } | Self::Idle { .. } => Self::Busy { in_flight: 1 },
        }
    }

    /// A response body was sent (or dropped): with none left, the connection is idle.
    #[must_use]
    pub(super) fn response_finished(self, now: Instant) -> Self {
        match self {
            Self::Busy { in_flight } if in_flight > 1 => Self::Busy { in_flight: in_flight - 1 },
            Self::Busy { .. } | Self::Idle { .. } => Self::Idle { since: now },
            reading @ Self::ReadingHead { .. } => reading,
        }
    }

    /// When the connection must be closed, and which timeout that is; `None` while busy
    /// (a request may take as long as it takes: chat streams last minutes).
    pub(super) fn deadline(self, timeouts: Timeouts) -> Option<(Instant, ConnectionTimeout)> {
        match self {
            Self::ReadingHead { since } => Some((since + timeouts.header_read, ConnectionTimeout::HeaderRead)),
            Self::Idle { since } => Some((since + timeouts.idle, ConnectionTimeout::Idle)),
            Self::Busy { .. } => None,
        }
    }
}

/// When a watchdog that looks at `phase` at `now` should look again. It never sleeps longer
/// than the shorter timeout: every deadline is set at least that far after the transition that
/// sets it, and every transition happens after `now`, so no deadline can pass unseen.
pub(super) fn next_check(phase: Phase, timeouts: Timeouts, now: Instant) -> Instant {
    let period = now + timeouts.header_read.min(timeouts.idle);
    phase.deadline(timeouts).map_or(period, |(deadline, _)| deadline.min(period))
}

/// The timeout that has passed at `now`, if any.
pub(super) fn expired(phase: Phase, timeouts: Timeouts, now: Instant) -> Option<ConnectionTimeout> {
    phase.deadline(timeouts).filter(|(deadline, _)| *deadline <= now).map(|(_, timeout)| timeout)
}

#[cfg(test)]
mod tests;
