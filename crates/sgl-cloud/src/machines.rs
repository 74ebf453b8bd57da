//! `sgl-cloud machines …`: rent whole machines by the hour, paid from the API key's credits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use sgl_client::Client;
use sgl_protocol::api::machines::{MachineState, MachineView, ProvisionRequest};

use crate::{micros_to_usd, output};

pub(crate) const ABOUT: &str = "Rent whole machines by the hour: a container on the grid's own host (local:* plans), a \
Vultr VPS or GPU box (vc2-*, vhp-*, vdc-*, vcg-*) or a DigitalOcean droplet (do:*). The prepaid time is paid from \
your credits when the machine first answers SSH; if it never does, every micro-dollar goes back.";

pub(crate) const EXAMPLE: &str = "Examples:
  sgl-cloud machines plans
  sgl-cloud machines provision --plan local:1c-512mb --region local --hours 2 --ssh-key-file ~/.ssh/id_ed25519.pub --wait
  sgl-cloud machines extend vm_… --hours 3
  sgl-cloud machines resize vm_… --plan local:2c-1gb
  sgl-cloud machines destroy vm_…";

#[derive(Debug, Subcommand)]
pub(crate) enum MachinesCommand {
    /// Plans on sale with their hourly and monthly prices.
    Plans,
    /// Regions machines are sold in.
    Regions,
    /// Rent a machine.
    Provision(ProvisionArgs),
    /// Your machines, newest first.
    List,
    /// One machine with its log.
    Show {
        /// The machine's id (`vm_…`).
        id: String,
    },
    /// The one-time root password of a machine made without an SSH key (shown once).
    Password {
        /// The machine's id.
        id: String,
    },
    /// Buy more hours.
    Extend {
        /// The machine's id.
        id: String,
        /// Hours to add.
        #[arg(long)]
        hours: u32,
    },
    /// Move to another plan of the same backend, keeping the prepaid value left (free).
    Resize {
        /// The machine's id.
        id: String,
        /// The new plan.
        #[arg(long)]
        plan: String,
        /// Confirm a disk growth that cannot be undone (DigitalOcean).
        #[arg(long)]
        confirm_disk_resize: bool,
    },
    /// End a machine now and remove it (prepaid time is not refunded).
    Destroy {
        /// The machine's id.
        id: String,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("duration").required(true).multiple(false)))]
pub(crate) struct ProvisionArgs {
    /// The plan (`sgl-cloud machines plans`).
    #[arg(long)]
    plan: String,
    /// The region (`sgl-cloud machines regions`).
    #[arg(long)]
    region: String,
    /// Prepaid hours.
    #[arg(long, group = "duration")]
    hours: Option<u32>,
    /// Prepaid days of 24 hours.
    #[arg(long, group = "duration")]
    days: Option<u32>,
    /// Prepaid months of 720 hours.
    #[arg(long, group = "duration")]
    months: Option<u32>,
    /// Your SSH public key (`.pub`; a private key's path finds its `.pub` beside it). Without
    /// one the machine gets a one-time root password, where the backend can.
    #[arg(long)]
    ssh_key_file: Option<PathBuf>,
    /// A label to recognise it by.
    #[arg(long)]
    label: Option<String>,
    /// The provider's operating system id.
    #[arg(long)]
    os_id: Option<u32>,
    /// An https URL the grid POSTs the machine's 24 h and 1 h warnings and its end to.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Wait until it answers SSH and print the command to log in.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds (the machine keeps being made).
    #[arg(long, default_value_t = 300)]
    wait_timeout: u64,
}

pub(crate) async fn run(client: &Client, command: MachinesCommand, json: bool) -> anyhow::Result<()> {
    match command {
        MachinesCommand::Plans => {
            let plans = client.machine_plans().await?;
            output(json, &plans, || {
                let lines = plans.plans.iter().map(|p| {
                    format!(
                        "{:<24} {:>3} vCPU {:>6} MiB {:>4} GB  ${:.4}/h  ${:.2}/mo  {}",
                        p.id,
                        p.vcpus,
                        p.memory_mb,
                        p.disk_gb,
                        p.hourly_usd,
                        p.monthly_usd,
                        p.regions.join(",")
                    )
                });
                lines.collect::<Vec<_>>().join("\n")
            })
        }
        MachinesCommand::Regions => {
            let regions = client.machine_regions().await?;
            output(json, &regions, || {
                let lines = regions.regions.iter().map(|r| {
                    let place = [r.city.as_str(), r.country.as_str()].into_iter().filter(|p| !p.is_empty());
                    format!("{:<12} {:<13} {}", r.id, r.backend, place.collect::<Vec<_>>().join(", "))
                });
                lines.collect::<Vec<_>>().join("\n")
            })
        }
        MachinesCommand::Provision(args) => provision(client, args, json).await,
        MachinesCommand::List => {
            let list = client.machines().await?;
            output(json, &list, || list.instances.iter().map(summary).collect::<Vec<_>>().join("\n"))
        }
        MachinesCommand::Show { id } => {
            let machine = client.machine(&id).await?;
            output(json, &machine, || details(&machine))
        }
        MachinesCommand::Password { id } => {
            let password = client.machine_password(&id).await?;
            output(json, &password, || format!("{} (shown once; it will not be shown again)", password.password))
        }
        MachinesCommand::Extend { id, hours } => {
            let machine = client.extend_machine(&id, hours).await?;
            output(json, &machine, || summary(&machine))
        }
        MachinesCommand::Resize { id, plan, confirm_disk_resize } => {
            let machine = client.resize_machine(&id, &plan, confirm_disk_resize).await?;
            output(json, &machine, || summary(&machine))
        }
        MachinesCommand::Destroy { id } => {
            let machine = client.destroy_machine(&id).await?;
            output(json, &machine, || summary(&machine))
        }
    }
}

/// The public key in `path`, or in `path.pub` when `path` is a private key.
fn read_public_key(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !text.contains("PRIVATE KEY") {
        return Ok(text.trim().to_owned());
    }
    let public = PathBuf::from(format!("{}.pub", path.display()));
    let text = std::fs::read_to_string(&public)
        .with_context(|| format!("{} is a private key and {} cannot be read", path.display(), public.display()))?;
    Ok(text.trim().to_owned())
}

async fn provision(client: &Client, args: ProvisionArgs, json: bool) -> anyhow::Result<()> {
    let ssh_public_key = args.ssh_key_file.as_deref().map(read_public_key).transpose()?;
    // The private key beside the public one, for the command printed at the end.
    let identity = args.ssh_key_file.as_deref().map(|path| {
        let text = path.display().to_string();
        text.strip_suffix(".pub").map_or(text.clone(), str::to_owned)
    });
    let request = ProvisionRequest {
        plan: args.plan,
        region: args.region,
        os_id: args.os_id,
        label: args.label,
        prepaid_hours: args.hours,
        prepaid_days: args.days,
        prepaid_months: args.months,
        ssh_public_key,
        use_credits: Some(true),
        webhook_url: args.webhook_url,
    };
    let started = Instant::now();
    let machine = client.provision_machine(&request).await?;
    if !args.wait {
        return output(json, &machine, || {
            format!("{}\nfollow it with: sgl-cloud machines show {}", summary(&machine), machine.id)
        });
    }
    if !json {
        eprintln!("{}: paid ${:.6}; waiting for SSH…", machine.id, micros_to_usd(machine.paid_micros));
    }
    let machine = wait_until_reachable(client, &machine.id, Duration::from_secs(args.wait_timeout)).await?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let mut value = serde_json::to_value(&machine).context("cannot print the machine as JSON")?;
        value["provision_seconds"] = serde_json::json!(seconds);
        value["ssh_command"] = serde_json::json!(login_command(&machine, identity.as_deref()));
        return output(true, &value, String::new);
    }
    output(false, &machine, || {
        format!(
            "{} is reachable {seconds:.1} s after provisioning ({}, region {})\nprepaid {} h for ${:.6}; expires {}\n{}",
            machine.id,
            machine.plan,
            machine.region,
            machine.hours_left.map_or(0.0, f64::round),
            micros_to_usd(machine.paid_micros),
            machine.expires_at.as_deref().unwrap_or("-"),
            login_command(&machine, identity.as_deref()),
        )
    })
}

async fn wait_until_reachable(client: &Client, id: &str, timeout: Duration) -> anyhow::Result<MachineView> {
    let deadline = Instant::now() + timeout;
    loop {
        let machine = client.machine(id).await?;
        if let Some(reason) = machine.end_reason {
            bail!(
                "{id} ended before it was reachable: {} ({} micro-USD refunded)",
                reason.as_str(),
                machine.refunded_micros
            );
        }
        if matches!(machine.state, MachineState::Active | MachineState::Expiring) && machine.ssh.is_some() {
            return Ok(machine);
        }
        if Instant::now() >= deadline {
            bail!(
                "{id} is not reachable after {} s; it is still being made (sgl-cloud machines show {id})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The grid's SSH command, with `-i` for the key the machine was made with.
fn login_command(machine: &MachineView, identity: Option<&str>) -> String {
    match (machine.ssh_command.as_deref(), identity) {
        (Some(command), Some(identity)) => command.replacen("ssh ", &format!("ssh -i {identity} "), 1),
        (Some(command), None) => command.to_owned(),
        (None, _) => "-".to_owned(),
    }
}

fn summary(machine: &MachineView) -> String {
    let state = match machine.end_reason {
        Some(reason) => format!("{} ({})", machine.state.as_str(), reason.as_str()),
        None => machine.state.as_str().to_owned(),
    };
    format!(
        "{}  {:<16} {:<24} expires {}  {}",
        machine.id,
        state,
        machine.plan,
        machine.expires_at.as_deref().unwrap_or("-"),
        machine.ssh_command.as_deref().unwrap_or("")
    )
}

fn details(machine: &MachineView) -> String {
    let mut lines = vec![summary(machine)];
    lines.push(format!(
        "paid ${:.6}, refunded ${:.6}, ${:.6}/h, {:.2} h left",
        micros_to_usd(machine.paid_micros),
        micros_to_usd(machine.refunded_micros),
        micros_to_usd(machine.hourly_micros),
        machine.hours_left.unwrap_or(0.0)
    ));
    if machine.password_available {
        lines.push(format!("a one-time root password waits: sgl-cloud machines password {}", machine.id));
    }
    lines.extend(machine.events.iter().map(|e| format!("  {}  {:<16} {}", e.at, e.kind.as_str(), e.message)));
    lines.join("\n")
}
