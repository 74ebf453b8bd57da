//! What the Vultr and DigitalOcean clients share: how a grid machine is named and tagged at a
//! provider, and the check that keeps a provider id from changing the path it is put in.

use crate::backend::BackendError;

/// The tag that marks a provider's machine as the grid's machine `machine_id`, so a later
/// reconcile can find machines whose create answer was lost.
pub(crate) fn tag(machine_id: &str) -> String {
    format!("sgl-machine:{machine_id}")
}

/// The name an SSH key is registered under for the few seconds it exists.
pub(crate) fn key_name(machine_id: &str) -> String {
    format!("sgl-{machine_id}")
}

/// A valid hostname from a machine id (`vm_5c0f…` → `vm-5c0f…`): lowercase letters, digits and
/// dashes, at most 63 characters, never empty.
pub(crate) fn hostname(machine_id: &str) -> String {
    let name: String = machine_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(63)
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() { "sgl-machine".to_owned() } else { name.to_owned() }
}

/// `id` as one path segment: ids the providers hand out are letters, digits and dashes, so
/// anything else cannot name a machine there and is [`BackendError::NotFound`].
pub(crate) fn segment(id: &str) -> Result<&str, BackendError> {
    let fits = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if fits { Ok(id) } else { Err(BackendError::NotFound) }
}

#[cfg(test)]
mod tests {
    //! Names, tags and path segments.

    use super::*;

    #[test]
    fn machine_ids_become_hostnames_tags_and_safe_segments() {
        assert_eq!(hostname("vm_5C0F"), "vm-5c0f");
        assert_eq!(hostname("__"), "sgl-machine");
        assert_eq!(hostname(&"a".repeat(100)).len(), 63);
        assert_eq!(tag("vm_1"), "sgl-machine:vm_1");
        assert!(segment("cb676a46-66fd-4dfb-b839-443f2e6c0b60").is_ok());
        assert!(segment("3164444").is_ok());
        for bad in ["", "../plans", "a/b", "a?b", "a b"] {
            assert!(matches!(segment(bad), Err(BackendError::NotFound)), "{bad:?}");
        }
    }
}
