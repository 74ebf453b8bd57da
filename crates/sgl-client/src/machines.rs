//! Machines rented by the hour (`/compute/...`; `docs/protocol.md` §16): plans and regions,
//! provision with credits, and the renter's instance calls with the API key.

use reqwest::Method;
use sgl_protocol::api::machines::{
    ExtendRequest, MachineList, MachinePassword, MachineView, PlanList, ProvisionRequest, RegionList, ResizeRequest,
};

use crate::client::{Client, Retry};
use crate::error::Error;

fn instance(id: &str, rest: &str) -> String {
    format!("/compute/instances/{id}{rest}")
}

impl Client {
    /// `GET /compute/plans`: every plan on sale, cheapest first.
    pub async fn machine_plans(&self) -> Result<PlanList, Error> {
        self.get_json("/compute/plans", &[], false).await
    }

    /// `GET /compute/regions`.
    pub async fn machine_regions(&self) -> Result<RegionList, Error> {
        self.get_json("/compute/regions", &[], false).await
    }

    /// `POST /compute/provision`, paid from the key's credits. Not retried: a second attempt
    /// would pay for a second machine.
    pub async fn provision_machine(&self, request: &ProvisionRequest) -> Result<MachineView, Error> {
        self.send_json(Method::POST, "/compute/provision", Some(request), Retry::No).await
    }

    /// `GET /compute/instances`: the account's machines, newest first.
    pub async fn machines(&self) -> Result<MachineList, Error> {
        self.get_json("/compute/instances", &[], true).await
    }

    /// `GET /compute/instances/{id}`: the machine with its log.
    pub async fn machine(&self, id: &str) -> Result<MachineView, Error> {
        self.get_json(&instance(id, ""), &[], true).await
    }

    /// `GET /compute/instances/{id}/password`: the one-time root password (shown once).
    pub async fn machine_password(&self, id: &str) -> Result<MachinePassword, Error> {
        self.get_json(&instance(id, "/password"), &[], true).await
    }

    /// `POST /compute/instances/{id}/extend`, paid from credits. Not retried.
    pub async fn extend_machine(&self, id: &str, hours: u32) -> Result<MachineView, Error> {
        let request = ExtendRequest { extend_hours: hours, use_credits: Some(true) };
        self.send_json(Method::POST, &instance(id, "/extend"), Some(&request), Retry::No).await
    }

    /// `POST /compute/instances/{id}/resize`: free, keeps the prepaid value left.
    pub async fn resize_machine(&self, id: &str, plan: &str, confirm_disk_resize: bool) -> Result<MachineView, Error> {
        let request = ResizeRequest { plan: plan.to_owned(), confirm_disk_resize: Some(confirm_disk_resize) };
        self.send_json(Method::POST, &instance(id, "/resize"), Some(&request), Retry::No).await
    }

    /// `DELETE /compute/instances/{id}`.
    pub async fn destroy_machine(&self, id: &str) -> Result<MachineView, Error> {
        self.send_json::<(), _>(Method::DELETE, &instance(id, ""), None, Retry::No).await
    }
}
