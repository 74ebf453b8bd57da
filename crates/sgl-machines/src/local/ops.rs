//! What each [`MachineBackend`](crate::backend::MachineBackend) call does to a local machine:
//! the steps of `steps`, in order, under the machine's lock. A create that fails part-way
//! removes what it made; a destroy succeeds only when the leftover scan finds nothing.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use rustix::process::Signal;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::cgroup::{self, Limits};
use super::forward::{self, Forwarder};
use super::leftovers::{self, Traces};
use super::machine::{self, Machine, Slot};
use super::steps;
use super::{Known, LocalBackend};
use crate::backend::{BackendError, CreateSpec, Created, Leftover, LocalError, Password, ResizeSpec, Status};

/// How long a stop waits for the machine to power off after SIGTERM before SIGKILL.
const STOP_PATIENCE: Duration = Duration::from_secs(10);
/// How long it then waits for SIGKILL to take effect.
const KILL_PATIENCE: Duration = Duration::from_secs(5);
/// How long a boot waits for systemd-nspawn to fail at once before it counts as started.
const EARLY_EXIT: Duration = Duration::from_millis(300);
/// How often a stop checks whether the machine is gone.
const STOP_POLL: Duration = Duration::from_millis(50);
/// The SSH port inside the machine.
const SSH_PORT: u16 = 22;
/// Root passwords: 24 characters without look-alikes (about 140 bits).
const PASSWORD_LEN: usize = 24;
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

impl LocalBackend {
    pub(super) async fn create_machine(&self, spec: &CreateSpec) -> Result<Created, BackendError> {
        let machine = Machine::new(&self.config.data_dir, &spec.machine_id)?;
        self.probe()?;
        let plan = self.plan(&spec.plan.id)?;
        let limits = Limits { vcpus: plan.vcpus, memory_mb: plan.memory_mb };
        let _guard = self.lock(machine.id()).await;
        let slot = self.claim(&machine).await?;
        match self.build(&machine, slot, limits, spec.ssh_public_key.as_deref()).await {
            Ok(password) => Ok(Created { provider_id: machine.id().to_owned(), password }),
            Err(error) => {
                // The error that matters is the build's; whatever teardown could not remove
                // shows in `leftovers`.
                let _ = self.teardown(&machine).await;
                Err(error.into())
            }
        }
    }

    pub(super) fn machine_status(&self, id: &str) -> Result<Status, BackendError> {
        let machine = Machine::new(&self.config.data_dir, id)?;
        if !machine.exists() {
            return Ok(Status::Gone);
        }
        if machine.is_stopped() {
            return Ok(Status::Stopped);
        }
        if !self.is_alive(&machine) {
            // Not started yet, or powered off from inside (`poweroff`) or by a host reboot.
            return Ok(if machine.pid().is_some() { Status::Stopped } else { Status::Provisioning });
        }
        let state = self.state();
        Ok(match state.forwarders.get(id).filter(|forwarder| forwarder.is_running()) {
            Some(forwarder) => Status::Running { ssh: forwarder.addr() },
            None => Status::Provisioning,
        })
    }

    pub(super) async fn stop_machine(&self, id: &str) -> Result<(), BackendError> {
        let (machine, _guard) = self.existing(id).await?;
        self.close_forwarder(id).await;
        self.halt(&machine).await?;
        machine.set_stopped(true)?;
        Ok(())
    }

    pub(super) async fn start_machine(&self, id: &str) -> Result<(), BackendError> {
        let (machine, _guard) = self.existing(id).await?;
        let slot = machine.slot().map(Slot).ok_or(BackendError::NotFound)?;
        if !self.is_alive(&machine) {
            self.restore(&machine, slot).await?;
            self.boot(&machine, slot).await?;
        }
        machine.set_stopped(false)?;
        self.open_forwarder(&machine, slot).await?;
        Ok(())
    }

    pub(super) async fn resize_machine(&self, id: &str, to: &ResizeSpec) -> Result<(), BackendError> {
        let plan = self.plan(&to.plan.id)?;
        let limits = Limits { vcpus: plan.vcpus, memory_mb: plan.memory_mb };
        let (machine, _guard) = self.existing(id).await?;
        cgroup::create(&machine.cgroups(), limits)?;
        machine.set_limits(limits)?;
        Ok(())
    }

    pub(super) async fn destroy_machine(&self, id: &str) -> Result<(), BackendError> {
        let machine = Machine::new(&self.config.data_dir, id)?;
        let _guard = self.lock(id).await;
        self.close_forwarder(id).await;
        // Teardown goes on whatever a step answers: the leftover scan is the judge.
        let _ = self.halt(&machine).await;
        let _ = self.teardown(&machine).await;
        let left = self.machine_leftovers(id)?;
        if left.is_empty() { Ok(()) } else { Err(LocalError::Leftovers(left).into()) }
    }

    pub(super) fn machine_leftovers(&self, id: &str) -> Result<Vec<Leftover>, BackendError> {
        let machine = Machine::new(&self.config.data_dir, id)?;
        let known = self.known(&machine);
        let name = machine.name();
        let traces = Traces { dir: machine.dir(), name: &name, slot: known.slot, cgroups: &known.cgroups };
        Ok(leftovers::scan(&traces))
    }

    /// Whether the machine's systemd-nspawn runs (reaping it first if it was ours and ended).
    pub(super) fn is_alive(&self, machine: &Machine) -> bool {
        let mut state = self.state();
        if let Some(child) = state.children.get_mut(machine.id())
            && !matches!(child.try_wait(), Ok(None))
        {
            state.children.remove(machine.id());
        }
        drop(state);
        machine.pid().is_some_and(|pid| steps::is_machine_process(pid, &machine.name()))
    }

    /// Starts the machine's SSH forwarder unless one runs, on its recorded port when free.
    pub(super) async fn open_forwarder(&self, machine: &Machine, slot: Slot) -> Result<(), LocalError> {
        if self.state().forwarders.get(machine.id()).is_some_and(Forwarder::is_running) {
            return Ok(());
        }
        let guest = self.addresses(slot)?.1;
        let mut avoid: BTreeSet<u16> = machine::all(&self.config.data_dir)
            .iter()
            .filter(|other| other.id() != machine.id())
            .filter_map(Machine::port)
            .collect();
        avoid.extend(self.state().forwarders.values().map(|forwarder| forwarder.addr().port()));
        let (host, ports) = (self.config.public_host, &self.config.ssh_ports);
        let listener = forward::bind(host, ports, machine.port(), &avoid).await.ok_or(LocalError::NoFreeSlot)?;
        let forwarder = Forwarder::start(listener, SocketAddr::from((guest, SSH_PORT)))?;
        machine.set_port(forwarder.addr().port())?;
        self.state().forwarders.insert(machine.id().to_owned(), forwarder);
        Ok(())
    }

    /// Makes the machine's folder and claims the lowest slot free in this data directory and
    /// on the host.
    async fn claim(&self, machine: &Machine) -> Result<Slot, LocalError> {
        let _claims = self.claims.lock().await;
        if machine.exists() {
            return Err(LocalError::AlreadyExists(machine.id().to_owned()));
        }
        std::fs::create_dir_all(machine::machines_dir(&self.config.data_dir))?;
        std::fs::create_dir(machine.dir())?;
        let claimed = self.claim_slot().await;
        match claimed {
            Ok(slot) => {
                machine.set_slot(slot.0)?;
                self.state().known.insert(machine.id().to_owned(), Known { slot: Some(slot), cgroups: Vec::new() });
                Ok(slot)
            }
            Err(error) => {
                std::fs::remove_dir_all(machine.dir())?;
                Err(error)
            }
        }
    }

    async fn claim_slot(&self) -> Result<Slot, LocalError> {
        let used: BTreeSet<u32> = machine::all(&self.config.data_dir).iter().filter_map(Machine::slot).collect();
        for slot in (0..self.config.max_machines).filter(|n| !used.contains(n)).map(Slot) {
            if slot.guest_addr(self.config.subnet_base).is_none() {
                break;
            }
            if !slot.taken_on_host() && steps::claim_netns(slot).await? {
                return Ok(slot);
            }
        }
        Err(LocalError::NoFreeSlot)
    }

    /// Everything after the claim: overlay, root, password or key, network, cgroups, boot, SSH.
    async fn build(
        &self,
        machine: &Machine,
        slot: Slot,
        limits: Limits,
        key: Option<&str>,
    ) -> Result<Option<Password>, LocalError> {
        machine.set_limits(limits)?;
        steps::mount_overlay(&self.config.image, machine).await?;
        steps::prepare_root(machine).await?;
        let password = match key {
            Some(key) => {
                std::fs::write(machine.key_file(), format!("{}\n", key.trim()))?;
                None
            }
            None => {
                let password = new_password();
                steps::set_password(machine, password.expose()).await?;
                Some(password)
            }
        };
        let (host, guest) = self.addresses(slot)?;
        steps::make_veth(slot, host, guest).await?;
        self.make_cgroups(machine, limits)?;
        self.boot(machine, slot).await?;
        self.open_forwarder(machine, slot).await?;
        Ok(password)
    }

    /// What a host reboot takes away from a stopped machine: the overlay mount, the network
    /// namespace and pair, the cgroups.
    async fn restore(&self, machine: &Machine, slot: Slot) -> Result<(), LocalError> {
        if leftovers::mounts_under(&machine.root()).is_empty() {
            steps::mount_overlay(&self.config.image, machine).await?;
        }
        if !Path::new("/run/netns").join(slot.netns()).exists() {
            if !steps::claim_netns(slot).await? {
                return Err(LocalError::NoFreeSlot);
            }
            let (host, guest) = self.addresses(slot)?;
            steps::make_veth(slot, host, guest).await?;
        }
        let limits = machine.limits().unwrap_or(Limits { vcpus: 1, memory_mb: 512 });
        self.make_cgroups(machine, limits)
    }

    /// Makes (or finds again) the machine's cgroups with `limits`, recording them first so
    /// that a failure part-way can still be cleaned up.
    fn make_cgroups(&self, machine: &Machine, limits: Limits) -> Result<(), LocalError> {
        let mut dirs = machine.cgroups();
        if dirs.is_empty() {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
            let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
            dirs = cgroup::plan_dirs(&mountinfo, &proc_cgroup, &machine.name());
            machine.set_cgroups(&dirs)?;
        }
        self.state().known.entry(machine.id().to_owned()).or_default().cgroups = dirs.clone();
        cgroup::create(&dirs, limits)
    }

    /// Starts systemd-nspawn and waits [`EARLY_EXIT`] for it to fail at once (a bad image, a
    /// cgroup it cannot join), which then is an error with the end of its console.
    async fn boot(&self, machine: &Machine, slot: Slot) -> Result<(), LocalError> {
        let mut child = steps::boot(machine, &machine.cgroups(), slot)?;
        let ended = |status: Option<i32>| {
            let console = std::fs::read_to_string(machine.console_log()).unwrap_or_default();
            let tail: Vec<&str> = console.lines().rev().take(5).collect();
            let stderr_tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            LocalError::Step { step: "systemd-nspawn", status, stderr_tail }
        };
        let pid = child.id().ok_or_else(|| ended(None))?;
        machine.set_pid(pid)?;
        if let Ok(status) = tokio::time::timeout(EARLY_EXIT, child.wait()).await {
            return Err(ended(status?.code()));
        }
        self.state().children.insert(machine.id().to_owned(), child);
        Ok(())
    }

    /// Powers the machine off: SIGTERM to systemd-nspawn (a clean shutdown inside), SIGKILL
    /// after [`STOP_PATIENCE`], then SIGKILL to everything left in its cgroups.
    async fn halt(&self, machine: &Machine) -> Result<(), LocalError> {
        let Some(pid) = machine.pid() else { return Ok(()) };
        if self.is_alive(machine) {
            steps::signal(pid, Signal::TERM);
            if !self.wait_until_gone(machine, STOP_PATIENCE).await {
                steps::signal(pid, Signal::KILL);
            }
        }
        // systemd-nspawn killed outright leaves the container's processes behind.
        cgroup::kill_all(&machine.cgroups());
        if self.wait_until_gone(machine, KILL_PATIENCE).await {
            return Ok(());
        }
        let stderr_tail = format!("systemd-nspawn (pid {pid}) survived SIGKILL");
        Err(LocalError::Step { step: "stop", status: None, stderr_tail })
    }

    async fn wait_until_gone(&self, machine: &Machine, patience: Duration) -> bool {
        let give_up = Instant::now() + patience;
        while self.is_alive(machine) {
            if Instant::now() >= give_up {
                return false;
            }
            tokio::time::sleep(STOP_POLL).await;
        }
        true
    }

    /// Undoes everything of a machine that is not running: mount, network, cgroups, folder.
    /// Stops at nothing: each step's failure shows as a leftover.
    async fn teardown(&self, machine: &Machine) -> Result<(), LocalError> {
        let known = self.known(machine);
        let nspawn_state = steps::remove_nspawn_state(machine);
        let unmounted = steps::unmount_overlay(machine).await;
        let net = match known.slot {
            Some(slot) => steps::delete_net(slot).await,
            None => Ok(()),
        };
        if let Some(slot) = known.slot
            && !slot.taken_on_host()
        {
            // Gone now, so the slot is free for any machine, of this grid or another: a
            // namespace of that name from now on is not this machine's leftover.
            self.state().known.entry(machine.id().to_owned()).or_default().slot = None;
        }
        let cgroups = cgroup::remove(&known.cgroups).await;
        // Never delete through a mount that is still there.
        if machine.exists() && leftovers::mounts_under(machine.dir()).is_empty() {
            tokio::fs::remove_dir_all(machine.dir()).await?;
        }
        self.state().children.remove(machine.id());
        nspawn_state.and(unmounted).and(net).and(cgroups)
    }

    async fn close_forwarder(&self, id: &str) {
        let forwarder = self.state().forwarders.remove(id);
        if let Some(forwarder) = forwarder {
            forwarder.close().await;
        }
    }

    /// The machine's slot and cgroups as its folder records them, or as last seen when the
    /// folder is gone, or (never seen) the cgroups it would get from this process.
    fn known(&self, machine: &Machine) -> Known {
        let mut state = self.state();
        let known = state.known.entry(machine.id().to_owned()).or_default();
        if let Some(slot) = machine.slot() {
            known.slot = Some(Slot(slot));
        }
        let recorded = machine.cgroups();
        if !recorded.is_empty() {
            known.cgroups = recorded;
        }
        if known.cgroups.is_empty() {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            return Known { slot: known.slot, cgroups: cgroup::plan_dirs(&mountinfo, &proc_cgroup, &machine.name()) };
        }
        known.clone()
    }

    /// The machine, locked, if its folder exists.
    async fn existing(&self, id: &str) -> Result<(Machine, OwnedMutexGuard<()>), BackendError> {
        let machine = Machine::new(&self.config.data_dir, id)?;
        let guard = self.lock(id).await;
        if machine.exists() { Ok((machine, guard)) } else { Err(BackendError::NotFound) }
    }

    /// The host's and the machine's addresses in the slot's /30.
    fn addresses(&self, slot: Slot) -> Result<(Ipv4Addr, Ipv4Addr), LocalError> {
        let base = self.config.subnet_base;
        slot.host_addr(base).zip(slot.guest_addr(base)).ok_or(LocalError::NoFreeSlot)
    }
}

/// A random root password from the operating system's random source (the QEMU backend's too).
pub(crate) fn new_password() -> Password {
    let alphabet_len = PASSWORD_ALPHABET.len();
    // Bytes at or above the largest multiple of the alphabet's size are dropped, so every
    // character is equally likely.
    let unbiased = 256 - 256 % alphabet_len;
    let mut password = zeroize::Zeroizing::new(String::with_capacity(PASSWORD_LEN));
    let mut bytes = zeroize::Zeroizing::new([0u8; 64]);
    while password.len() < PASSWORD_LEN {
        OsRng.fill_bytes(bytes.as_mut());
        for byte in bytes.iter().map(|byte| usize::from(*byte)).filter(|byte| *byte < unbiased) {
            if password.len() < PASSWORD_LEN {
                password.push(char::from(PASSWORD_ALPHABET[byte % alphabet_len]));
            }
        }
    }
    Password::new(std::mem::take(&mut *password))
}
