//! The process's open-file limit (`RLIMIT_NOFILE`) against the connection cap: every
//! connection is a file descriptor, and a process out of descriptors can accept nothing, not
//! even `/healthz`, and cannot open its database either. So the total cap never exceeds the
//! soft limit minus a reserve, after the soft limit has been raised toward what the cap needs
//! (never above the hard limit).

/// Descriptors kept free for everything that is not a client connection: the store's pool,
/// logs, outgoing calls to facilitators, the listener itself.
pub(super) const RESERVED_FDS: u64 = 128;

/// The most connections this process can hold when `wanted` are configured, raising the soft
/// limit first where that helps and the hard limit allows. Logs any raise, and a cap lowered
/// below `wanted`.
pub(super) fn connection_ceiling(wanted: usize) -> usize {
    let Some(soft) = current_soft_limit() else { return wanted };
    let needed = (wanted as u64).saturating_add(RESERVED_FDS);
    let soft = match raise_target(needed, soft) {
        Some(target) => match raise_soft_limit(target) {
            Ok(()) => {
                tracing::info!(from = soft.soft, to = target, "raised the open-file limit (RLIMIT_NOFILE)");
                Limit { soft: Some(target), ..soft }
            }
            Err(error) => {
                tracing::warn!(%error, to = target, "could not raise the open-file limit (RLIMIT_NOFILE)");
                soft
            }
        },
        None => soft,
    };
    let ceiling = ceiling(wanted, soft.soft);
    if ceiling < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_file_limit = soft.soft,
            allowed = ceiling,
            "the open-file limit allows fewer connections than max_connections; raise `ulimit -n`"
        );
    }
    ceiling
}

/// The soft and hard open-file limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limit {
    /// What the process may open now.
    pub(super) soft: Option<u64>,
    /// What the soft limit may be raised to without privileges.
    pub(super) hard: Option<u64>,
}

/// The soft limit to ask for so that `needed` descriptors fit, if raising helps at all.
pub(super) fn raise_target(needed: u64, limit: Limit) -> Option<u64> {
    let soft = limit.soft?;
    if soft >= needed {
        return None;
    }
    let target = limit.hard.map_or(needed, |hard| hard.min(needed));
    (target > soft).then_some(target)
}

/// `wanted` connections, lowered to what a soft limit of `soft` descriptors leaves after the
/// reserve (at least one).
pub(super) fn ceiling(wanted: usize, soft: Option<u64>) -> usize {
    let Some(soft) = soft else { return wanted };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    wanted.min(room).max(1)
}

#[cfg(unix)]
fn current_soft_limit() -> Option<Limit> {
    use rustix::process::{Resource, getrlimit};
    let limit = getrlimit(Resource::Nofile);
    Some(Limit { soft: limit.current, hard: limit.maximum })
}

#[cfg(not(unix))]
fn current_soft_limit() -> Option<Limit> {
    None
}

#[cfg(unix)]
fn raise_soft_limit(target: u64) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let maximum = getrlimit(Resource::Nofile).maximum;
    setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum }).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn raise_soft_limit(_target: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
