//! A machine's webhook: the grid POSTs a [`MachineNotice`] to the renter's `webhook_url` at the
//! 24 h and 1 h warnings, at the stop at expiry, when the machine is destroyed and when it failed
//! to be made. Best effort: three tries (at once, after 1 s, after 3 s), 5 s each, redirects not
//! followed, never blocking the leader's work; a grid that restarts meanwhile does not retry.
//! The machine's log (`GET /compute/instances/{id}`) is the record either way.

use std::net::IpAddr;
use std::time::Duration;

use sgl_protocol::api::machines::{MachineEventKind, MachineNotice};

use super::{MachineError, Machines};

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The waits before the second and third tries.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// The longest URL accepted.
const MAX_URL: usize = 2048;

/// The HTTP client webhooks go out on.
#[derive(Debug)]
pub(super) struct Notifier {
    http: Option<reqwest::Client>,
}

impl Notifier {
    pub(super) fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .inspect_err(|error| tracing::error!(%error, "machine webhooks are off: no HTTP client"))
            .ok();
        Self { http }
    }
}

/// Checks a renter's webhook URL: `https` to a public host, or with `allow_private` also `http`
/// and loopback or private addresses. Host names are not resolved here.
pub(super) fn check_url(url: &str, allow_private: bool) -> Result<String, MachineError> {
    if url.len() > MAX_URL {
        return Err(MachineError::BadWebhook("is longer than 2,048 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| MachineError::BadWebhook("is not a URL"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(MachineError::BadWebhook("must be an https URL")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(MachineError::BadWebhook("must not carry credentials"));
    }
    let host = parsed.host_str().ok_or(MachineError::BadWebhook("has no host"))?;
    let private = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => is_private(ip),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    };
    if private && !allow_private {
        return Err(MachineError::BadWebhook("names a loopback or private address"));
    }
    Ok(parsed.to_string())
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00,
    }
}

impl Machines {
    /// POSTs `kind` to machine `id`'s webhook, if it has one, from a task of its own.
    pub(super) async fn notify(&self, id: &str, kind: MachineEventKind, message: &str) {
        let Some(http) = self.inner.webhooks.http.clone() else { return };
        let machine = match self.store().machine(id).await {
            Ok(Some(machine)) => machine,
            _ => return,
        };
        let Some(url) = machine.webhook_url.clone() else { return };
        let notice = MachineNotice {
            machine_id: machine.id.clone(),
            label: machine.label.clone(),
            kind,
            message: message.to_owned(),
            at_ms: self.now_ms(),
            state: machine.state,
            expires_at_ms: machine.expires_at,
        };
        tokio::spawn(async move {
            for attempt in 0..=BACKOFF.len() {
                match http.post(&url).json(&notice).send().await {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::info!(machine = %notice.machine_id, status = %response.status(), "webhook refused")
                    }
                    Err(error) => tracing::info!(machine = %notice.machine_id, %error, "webhook failed"),
                }
                if let Some(wait) = BACKOFF.get(attempt) {
                    tokio::time::sleep(*wait).await;
                }
            }
            tracing::warn!(machine = %notice.machine_id, kind = notice.kind.as_str(), "webhook given up after 3 tries");
        });
    }
}

#[cfg(test)]
mod tests {
    //! Webhook URLs: https to public hosts, private ones only when allowed.

    use super::*;

    #[test]
    fn webhook_urls_are_https_to_public_hosts_unless_allowed() {
        assert_eq!(check_url("https://hooks.example.com/m?x=1", false).unwrap(), "https://hooks.example.com/m?x=1");
        for (url, why) in [
            ("http://hooks.example.com/", "https"),
            ("https://127.0.0.1/", "private"),
            ("https://10.1.2.3/", "private"),
            ("https://[::1]/", "private"),
            ("https://localhost:8080/", "private"),
            ("https://user:pw@example.com/", "credentials"),
            ("not a url", "not a URL"),
            ("ftp://example.com/", "https"),
        ] {
            let error = check_url(url, false).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
    }
}
