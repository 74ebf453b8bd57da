//! The doubles answer over real HTTP with their documented shapes, record every call, and keep
//! Vultr's password to the create answer.

use serde_json::{Value, json};

use crate::{DigitalOceanDouble, Op, VultrDouble};

async fn send(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Option<Value>, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url).bearer_auth("t");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the double answers");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    (status, response.json().await.ok(), retry_after)
}

#[tokio::test]
async fn vultr_pages_plans_and_shows_the_password_only_when_created() {
    let vultr = VultrDouble::start().await.expect("double starts");
    vultr.set_page_size(4);
    let (status, first, _) = send(reqwest::Method::GET, format!("{}/plans?per_page=500", vultr.base_url()), None).await;
    let first = first.expect("json");
    assert_eq!(status, 200);
    assert_eq!(first["plans"].as_array().map(Vec::len), Some(4));
    let next = first["meta"]["links"]["next"].as_str().expect("next cursor").to_owned();
    let (_, second, _) =
        send(reqwest::Method::GET, format!("{}/plans?per_page=500&cursor={next}", vultr.base_url()), None).await;
    assert_eq!(second.expect("json")["meta"]["links"]["next"], "");

    let body = json!({"region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2136});
    let (status, created, _) = send(reqwest::Method::POST, format!("{}/instances", vultr.base_url()), Some(body)).await;
    assert_eq!(status, 202);
    let created = created.expect("json");
    let id = created["instance"]["id"].as_str().expect("id").to_owned();
    let password = vultr.issued_password(&id).expect("a password was issued");
    assert_eq!(created["instance"]["default_password"], password.as_str());
    let (_, read, _) = send(reqwest::Method::GET, format!("{}/instances/{id}", vultr.base_url()), None).await;
    assert!(read.expect("json")["instance"].get("default_password").is_none());
    assert!(vultr.calls().iter().all(|c| c.authorization.as_deref() == Some("Bearer t")));
}

#[tokio::test]
async fn faults_and_rate_limits_come_first_and_once() {
    let digitalocean = DigitalOceanDouble::start().await.expect("double starts");
    digitalocean.rate_limit_next(1, Some(3));
    digitalocean.fail_next(Op::Plans, 500, json!({"id": "server_error", "message": "boom"}));
    let url = format!("{}/v2/sizes?per_page=200", digitalocean.base_url());
    let (status, body, retry_after) = send(reqwest::Method::GET, url.clone(), None).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("3")));
    assert_eq!(body.expect("json")["id"], "too_many_requests");
    assert_eq!(send(reqwest::Method::GET, url.clone(), None).await.0, 500);
    let (status, body, _) = send(reqwest::Method::GET, url, None).await;
    assert_eq!(status, 200);
    assert_eq!(body.expect("json")["sizes"][0]["slug"], "s-1vcpu-1gb");
    assert_eq!(digitalocean.calls().len(), 3);
}
