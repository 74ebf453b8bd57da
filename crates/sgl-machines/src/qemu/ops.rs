//! What each [`MachineBackend`](crate::backend::MachineBackend) call does to a QEMU machine,
//! under the machine's lock. A create that fails part-way removes what it made; a destroy
//! succeeds only when the leftover scan finds nothing.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use rustix::process::Signal;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::steps::{self, Boot};
use super::vm::{self, Shape, Vm};
use super::{QemuBackend, disk, leftovers, qmp};
use crate::backend::{BackendError, CreateSpec, Created, Leftover, LocalError, Password, ResizeSpec, Status};
use crate::local::ops::new_password;

/// How long a stop waits for the guest to power off after QMP's `system_powerdown`.
const POWERDOWN_PATIENCE: Duration = Duration::from_secs(30);
/// How long it then waits for SIGKILL to take effect.
const KILL_PATIENCE: Duration = Duration::from_secs(5);
/// How long a boot watches QEMU for failing at once (a port taken, a bad disk) before it counts
/// as started; the port stays claimed until then.
const EARLY_EXIT: Duration = Duration::from_secs(1);
/// How often a stop checks whether QEMU is gone.
const STOP_POLL: Duration = Duration::from_millis(100);
/// The longest path a Unix socket can be bound at (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

impl QemuBackend {
    pub(super) async fn create_machine(&self, spec: &CreateSpec) -> Result<Created, BackendError> {
        let vm = Vm::new(&self.config.data_dir, &spec.machine_id)?;
        self.probe()?;
        self.check_paths(&vm)?;
        let plan = self.plan(&spec.plan.id)?;
        let shape = Shape { vcpus: plan.vcpus, memory_mb: plan.memory_mb, disk_gb: plan.disk_gb };
        let _guard = self.lock(vm.id()).await;
        self.claim(&vm).await?;
        match self.build(&vm, shape, spec.ssh_public_key.as_deref()).await {
            Ok(password) => Ok(Created { provider_id: vm.id().to_owned(), password }),
            Err(error) => {
                // The error that matters is the build's; whatever teardown could not remove
                // shows in `leftovers`.
                let _ = self.teardown(&vm).await;
                Err(error.into())
            }
        }
    }

    pub(super) fn machine_status(&self, id: &str) -> Result<Status, BackendError> {
        let vm = Vm::new(&self.config.data_dir, id)?;
        if !vm.exists() {
            return Ok(Status::Gone);
        }
        if vm.is_stopped() {
            return Ok(Status::Stopped);
        }
        if self.is_alive(&vm) {
            return Ok(match vm.port() {
                Some(port) => Status::Running { ssh: SocketAddr::new(self.config.public_host, port) },
                None => Status::Provisioning,
            });
        }
        // Not booted yet, or powered off from inside (`poweroff`) or by a host reboot.
        Ok(if vm.pid().is_some() { Status::Stopped } else { Status::Provisioning })
    }

    pub(super) async fn stop_machine(&self, id: &str) -> Result<(), BackendError> {
        let (vm, _guard) = self.existing(id).await?;
        self.power_off(&vm).await?;
        vm.set_stopped(true)?;
        Ok(())
    }

    pub(super) async fn start_machine(&self, id: &str) -> Result<(), BackendError> {
        let (vm, _guard) = self.existing(id).await?;
        if !self.is_alive(&vm) {
            self.boot(&vm).await?;
        }
        vm.set_stopped(false)?;
        Ok(())
    }

    /// Powers the machine off, gives it the new plan's CPUs and memory and, when asked and
    /// bigger, its disk (for good), and boots it again if it was running. A failed disk growth
    /// still boots it again, with its old disk.
    pub(super) async fn resize_machine(&self, id: &str, to: &ResizeSpec) -> Result<(), BackendError> {
        let plan = self.plan(&to.plan.id)?;
        let (vm, _guard) = self.existing(id).await?;
        let shape = vm.shape().ok_or_else(|| missing_record("resize", "shape"))?;
        let was_running = self.is_alive(&vm);
        if was_running {
            self.power_off(&vm).await?;
        }
        let grown = if to.grow_disk && plan.disk_gb > shape.disk_gb {
            disk::grow(&vm, plan.disk_gb).await.map(|()| plan.disk_gb)
        } else {
            Ok(shape.disk_gb)
        };
        let disk_gb = *grown.as_ref().unwrap_or(&shape.disk_gb);
        vm.set_shape(Shape { vcpus: plan.vcpus, memory_mb: plan.memory_mb, disk_gb })?;
        if was_running {
            self.boot(&vm).await?;
        }
        grown?;
        Ok(())
    }

    pub(super) async fn destroy_machine(&self, id: &str) -> Result<(), BackendError> {
        let vm = Vm::new(&self.config.data_dir, id)?;
        let _guard = self.lock(id).await;
        // Teardown goes on whatever a step answers: the leftover scan is the judge.
        let _ = self.teardown(&vm).await;
        let left = self.machine_leftovers(id)?;
        if left.is_empty() { Ok(()) } else { Err(LocalError::Leftovers(left).into()) }
    }

    pub(super) fn machine_leftovers(&self, id: &str) -> Result<Vec<Leftover>, BackendError> {
        let vm = Vm::new(&self.config.data_dir, id)?;
        Ok(leftovers::scan(&vm.name(), vm.dir()))
    }

    /// Refuses folders QEMU's options would misread, and a QMP socket path too long to bind.
    fn check_paths(&self, vm: &Vm) -> Result<(), LocalError> {
        for dir in [&self.config.vm_dir, &self.config.data_dir] {
            if !steps::usable_path(dir) {
                return Err(LocalError::UnusablePath(dir.clone()));
            }
        }
        let socket = vm.qmp_socket();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(LocalError::UnusablePath(socket));
        }
        Ok(())
    }

    /// Makes the machine's folder, unless it exists or the backend has all the machines it may.
    async fn claim(&self, vm: &Vm) -> Result<(), LocalError> {
        let _claims = self.claims.lock().await;
        if vm.exists() {
            return Err(LocalError::AlreadyExists(vm.id().to_owned()));
        }
        let count = vm::all(&self.config.data_dir).len();
        if u32::try_from(count).map_or(true, |count| count >= self.config.max_machines) {
            return Err(LocalError::NoFreeSlot);
        }
        std::fs::create_dir_all(vm::vms_dir(&self.config.data_dir))?;
        std::fs::create_dir(vm.dir())?;
        Ok(())
    }

    /// Everything after the claim: the records, the key or a password, the disk, the boot.
    async fn build(&self, vm: &Vm, shape: Shape, key: Option<&str>) -> Result<Option<Password>, LocalError> {
        vm.set_shape(shape)?;
        let password = match key {
            Some(key) => {
                let credential = format!("io.systemd.credential:ssh.authorized_keys.root={}\n", key.trim());
                std::fs::write(vm.credential(), credential)?;
                None
            }
            None => Some(new_password()),
        };
        let started = Instant::now();
        disk::make(&self.config.vm_dir.join("rootfs"), vm, shape.disk_gb, password.as_ref()).await?;
        tracing::debug!(machine = vm.id(), seconds = started.elapsed().as_secs_f64(), "disk made");
        self.boot(vm).await?;
        Ok(password)
    }

    /// Starts QEMU on a free port (its recorded one when free) and watches it for
    /// [`EARLY_EXIT`]: failing in that time is an error with the end of what it printed.
    async fn boot(&self, vm: &Vm) -> Result<(), LocalError> {
        let shape = vm.shape().ok_or_else(|| missing_record("boot", "shape"))?;
        let _claims = self.claims.lock().await;
        let port = self.free_port(vm)?;
        vm.set_port(port)?;
        let boot =
            Boot { vm_dir: &self.config.vm_dir, accel: self.config.accel, shape, host: self.config.public_host, port };
        let mut child = steps::spawn_qemu(vm, &boot)?;
        let ended = |status: Option<i32>| LocalError::Step {
            step: "qemu-system-x86_64",
            status,
            stderr_tail: steps::qemu_log_tail(vm),
        };
        let pid = child.id().ok_or_else(|| ended(None))?;
        vm.set_pid(pid)?;
        if let Ok(status) = tokio::time::timeout(EARLY_EXIT, child.wait()).await {
            return Err(ended(status?.code()));
        }
        self.children().insert(vm.id().to_owned(), child);
        Ok(())
    }

    /// A port of the range that nothing listens on and no other machine of this backend keeps,
    /// preferring the one `vm` had.
    pub(super) fn free_port(&self, vm: &Vm) -> Result<u16, LocalError> {
        let others = vm::all(&self.config.data_dir).into_iter().filter(|other| other.id() != vm.id());
        let taken: BTreeSet<u16> = others.filter_map(|other| other.port()).collect();
        let ports = &self.config.ssh_ports;
        let preferred = vm.port().filter(|port| ports.contains(port) && !taken.contains(port));
        let candidates = preferred.into_iter().chain(ports.clone().filter(|port| !taken.contains(port)));
        let mut free = candidates.filter(|port| std::net::TcpListener::bind((self.config.public_host, *port)).is_ok());
        free.next().ok_or(LocalError::NoFreeSlot)
    }

    /// Asks the guest to power off over QMP and waits [`POWERDOWN_PATIENCE`] for QEMU to exit,
    /// then kills it.
    async fn power_off(&self, vm: &Vm) -> Result<(), LocalError> {
        if self.is_alive(vm) {
            match qmp::execute(&vm.qmp_socket(), "qmp system_powerdown", "system_powerdown").await {
                Ok(_) if self.wait_until_gone(vm, POWERDOWN_PATIENCE).await => return Ok(()),
                Ok(_) => tracing::warn!(machine = vm.id(), "the guest did not power off in time; killing QEMU"),
                Err(error) => tracing::warn!(machine = vm.id(), %error, "QMP powerdown failed; killing QEMU"),
            }
        }
        self.kill(vm).await
    }

    /// SIGKILL to every QEMU of the machine, then waits [`KILL_PATIENCE`] for them to be gone.
    async fn kill(&self, vm: &Vm) -> Result<(), LocalError> {
        let name = vm.name();
        for pid in leftovers::processes_named(&name) {
            steps::signal(pid, Signal::KILL);
        }
        if self.wait_until_gone(vm, KILL_PATIENCE).await {
            return Ok(());
        }
        let stderr_tail = format!("QEMU of {name} survived SIGKILL");
        Err(LocalError::Step { step: "stop", status: None, stderr_tail })
    }

    /// Waits until no process of the machine is left, at most `patience`.
    async fn wait_until_gone(&self, vm: &Vm, patience: Duration) -> bool {
        let give_up = Instant::now() + patience;
        loop {
            self.reap(vm);
            if leftovers::processes_named(&vm.name()).is_empty() {
                return true;
            }
            if Instant::now() >= give_up {
                return false;
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    }

    /// Kills whatever runs of the machine and removes its folder. Every step is tried; the first
    /// error is returned.
    async fn teardown(&self, vm: &Vm) -> Result<(), LocalError> {
        let killed = self.kill(vm).await;
        self.children().remove(vm.id());
        let removed = match tokio::fs::remove_dir_all(vm.dir()).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        };
        killed.and(removed)
    }

    /// Whether the machine's QEMU runs (reaping it first if it was ours and ended).
    fn is_alive(&self, vm: &Vm) -> bool {
        self.reap(vm);
        vm.pid().is_some_and(|pid| steps::is_vm_process(pid, &vm.name()))
    }

    /// Collects the exit status of the machine's QEMU if this backend started it and it ended.
    fn reap(&self, vm: &Vm) {
        let mut children = self.children();
        if let Some(child) = children.get_mut(vm.id())
            && !matches!(child.try_wait(), Ok(None))
        {
            children.remove(vm.id());
        }
    }

    /// The machine, locked, if its folder exists.
    async fn existing(&self, id: &str) -> Result<(Vm, OwnedMutexGuard<()>), BackendError> {
        let vm = Vm::new(&self.config.data_dir, id)?;
        let guard = self.lock(id).await;
        if vm.exists() { Ok((vm, guard)) } else { Err(BackendError::NotFound) }
    }
}

fn missing_record(step: &'static str, record: &str) -> LocalError {
    LocalError::Step { step, status: None, stderr_tail: format!("the machine's `{record}` record is missing") }
}
