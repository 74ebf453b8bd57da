//! What both doubles share: the HTTP server on loopback, the log of calls, the injected faults
//! (a failing answer, a run of 429s), the readiness and action delays, and the control handle
//! tests hold. A provider module supplies only its routes and its answers ([`Provider`]).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The operations a fault can be injected into with [`Double::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Listing plans (Vultr `GET /plans`) or sizes (DigitalOcean `GET /v2/sizes`).
    Plans,
    /// Listing regions.
    Regions,
    /// Registering an SSH key.
    CreateKey,
    /// Deleting an SSH key.
    DeleteKey,
    /// Creating an instance or droplet.
    Create,
    /// Reading one instance or droplet.
    Get,
    /// Deleting an instance or droplet.
    Delete,
    /// Vultr: the plans an instance can move to (`GET /instances/{id}/upgrades`).
    Upgrades,
    /// Vultr: changing an instance's plan (`PATCH /instances/{id}`).
    Resize,
    /// Vultr: halting an instance.
    Halt,
    /// Vultr: starting an instance.
    Start,
    /// DigitalOcean: starting a droplet action (`POST /v2/droplets/{id}/actions`).
    Action,
    /// DigitalOcean: reading an action (`GET /v2/actions/{id}`).
    GetAction,
}

/// One request the double received, and what it answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path with its query (`/v2/plans?per_page=500`).
    pub path: String,
    /// The `Authorization` header as sent, if any.
    pub authorization: Option<String>,
    /// The request's JSON body, if it had one.
    pub body: Option<Value>,
    /// The status answered.
    pub status: u16,
    /// The JSON body answered, if any.
    pub reply: Option<Value>,
}

/// A machine the double holds, as tests inspect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The provider's id.
    pub id: String,
    /// The plan (Vultr) or size slug (DigitalOcean).
    pub plan: String,
    /// The region.
    pub region: String,
    /// The label (Vultr) or name (DigitalOcean).
    pub label: String,
    /// The hostname asked for (Vultr) or the name (DigitalOcean).
    pub hostname: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// The SSH key ids it was made with.
    pub ssh_keys: Vec<String>,
    /// The provider's status word (`pending`/`active`, `new`/`active`/`off`).
    pub status: String,
    /// Whether it is powered on.
    pub powered_on: bool,
    /// DigitalOcean: whether a resize grew its disk (which cannot be undone).
    pub disk_grown: bool,
}

/// An answer a provider module builds: a status, a JSON body or none.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self { status, body: Some(body) }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Self { status, body: None }
    }
}

/// What the shared server needs from a provider module.
pub(crate) trait Provider: Send + 'static {
    /// A parsed route.
    type Route;

    /// The route a request names, if the double serves it.
    fn route(method: &Method, path: &str) -> Option<Self::Route>;

    /// The operation a route belongs to (for injected faults).
    fn op(route: &Self::Route) -> Op;

    /// Serves a routed request.
    fn serve(shared: &mut Shared<Self>, route: Self::Route, query: &str, body: Option<Value>) -> Reply
    where
        Self: Sized;

    /// The body of a 429.
    fn rate_limited_body() -> Value;

    /// The body of a 404 for a path the double does not serve.
    fn unknown_path_body() -> Value;
}

/// The knobs and records every double has.
#[derive(Debug)]
pub(crate) struct Common {
    pub(crate) base_url: String,
    pub(crate) calls: Vec<Call>,
    pub(crate) faults: VecDeque<(Op, u16, Value)>,
    pub(crate) stalls: VecDeque<(Op, Duration)>,
    pub(crate) rate_limit_left: u32,
    pub(crate) retry_after: Option<u64>,
    pub(crate) ready_after: u32,
    pub(crate) slow_actions: u32,
    pub(crate) error_next_action: Option<String>,
    pub(crate) main_ip: String,
    pub(crate) page_size: usize,
    pub(crate) next_id: u64,
}

impl Common {
    /// A fresh number for ids.
    pub(crate) fn next_number(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn take_stall(&mut self, op: Op) -> Option<Duration> {
        let at = self.stalls.iter().position(|(o, _)| *o == op)?;
        self.stalls.remove(at).map(|(_, delay)| delay)
    }

    fn take_fault(&mut self, op: Op) -> Option<(u16, Value)> {
        let at = self.faults.iter().position(|(o, _, _)| *o == op)?;
        self.faults.remove(at).map(|(_, status, body)| (status, body))
    }
}

/// A double's whole state: the shared part and the provider's own.
#[derive(Debug)]
pub(crate) struct Shared<P> {
    pub(crate) common: Common,
    pub(crate) provider: P,
}

type SharedState<P> = Arc<Mutex<Shared<P>>>;

fn lock<P>(state: &Mutex<Shared<P>>) -> MutexGuard<'_, Shared<P>> {
    // A test that panicked while holding the lock must not hide the double from the next test.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running double: its address, its state and the server task, stopped when dropped.
#[derive(Debug)]
pub struct Double<P> {
    state: SharedState<P>,
    addr: SocketAddr,
    base_path: &'static str,
    server: JoinHandle<()>,
}

impl<P> Drop for Double<P> {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl<P> Double<P> {
    /// The API base a client is configured with (`http://127.0.0.1:PORT/v2` for Vultr,
    /// `http://127.0.0.1:PORT` for DigitalOcean).
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.base_path)
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state).common.calls.clone()
    }

    /// Answers the next request of `op` with `status` and `body` instead of serving it.
    /// Several faults queue up in order.
    pub fn fail_next(&self, op: Op, status: u16, body: Value) {
        lock(&self.state).common.faults.push_back((op, status, body));
    }

    /// Serves the next request of `op` as usual but holds its answer back for `delay`, as a
    /// provider whose answer is lost after it did the work (a client with a shorter timeout
    /// gives up; the work is done all the same).
    pub fn stall_next(&self, op: Op, delay: Duration) {
        lock(&self.state).common.stalls.push_back((op, delay));
    }

    /// Answers the next `n` requests, whatever they are, with 429 (and `Retry-After: s` when
    /// `retry_after` is given).
    pub fn rate_limit_next(&self, n: u32, retry_after: Option<u64>) {
        let mut shared = lock(&self.state);
        shared.common.rate_limit_left = n;
        shared.common.retry_after = retry_after;
    }

    /// The first `polls` reads of a new machine answer it as still provisioning; the next one
    /// finds it ready (active, with its address). 0, the default: ready on the first read.
    pub fn ready_after(&self, polls: u32) {
        lock(&self.state).common.ready_after = polls;
    }

    /// DigitalOcean: the first `polls` reads of a new action answer `in-progress`; the next one
    /// finds it done. 0, the default: done on the first read.
    pub fn slow_actions(&self, polls: u32) {
        lock(&self.state).common.slow_actions = polls;
    }

    /// DigitalOcean: the next action of type `kind` (`power_off`, `resize`, …) ends `errored`,
    /// with no effect.
    pub fn error_next_action(&self, kind: &str) {
        lock(&self.state).common.error_next_action = Some(kind.to_owned());
    }

    /// The public IPv4 address machines get when they become ready (default `192.0.2.123`,
    /// the documented example); an end-to-end test may point it at a loopback address where
    /// something answers SSH.
    pub fn set_main_ip(&self, ip: &str) {
        ip.clone_into(&mut lock(&self.state).common.main_ip);
    }

    /// Serves at most `n` items per page of a list, whatever `per_page` asks, so paging shows.
    pub fn set_page_size(&self, n: usize) {
        lock(&self.state).common.page_size = n.max(1);
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Shared<P>) -> T) -> T {
        f(&mut lock(&self.state))
    }
}

/// Binds `127.0.0.1:0` and serves `provider` under `base_path` (`/v2` for Vultr, whose
/// API base includes it; empty for DigitalOcean).
pub(crate) async fn serve<P: Provider>(provider: P, base_path: &'static str) -> io::Result<Double<P>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let common = Common {
        base_url: format!("http://{addr}"),
        calls: Vec::new(),
        faults: VecDeque::new(),
        stalls: VecDeque::new(),
        rate_limit_left: 0,
        retry_after: None,
        ready_after: 0,
        slow_actions: 0,
        error_next_action: None,
        main_ip: "192.0.2.123".to_owned(),
        page_size: usize::MAX,
        next_id: 0,
    };
    let state = Arc::new(Mutex::new(Shared { common, provider }));
    let app = Router::new().fallback(handle::<P>).with_state(Arc::clone(&state));
    // The server is owned by this handle and aborted when it drops.
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Double { state, addr, base_path, server })
}

async fn handle<P: Provider>(
    State(state): State<SharedState<P>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice::<Value>(&body).ok();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let (reply, retry_after, stall) = {
        let mut shared = lock(&state);
        let stall = P::route(&method, uri.path()).and_then(|route| shared.common.take_stall(P::op(&route)));
        let (reply, retry_after) = answer(&mut shared, &method, &uri, body.clone());
        shared.common.calls.push(Call {
            method: method.to_string(),
            path,
            authorization,
            body,
            status: reply.status,
            reply: reply.body.clone(),
        });
        (reply, retry_after, stall)
    };
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await;
    }
    respond(reply, retry_after)
}

fn answer<P: Provider>(
    shared: &mut Shared<P>,
    method: &Method,
    uri: &Uri,
    body: Option<Value>,
) -> (Reply, Option<u64>) {
    if shared.common.rate_limit_left > 0 {
        shared.common.rate_limit_left -= 1;
        return (Reply::json(429, P::rate_limited_body()), shared.common.retry_after);
    }
    let Some(route) = P::route(method, uri.path()) else {
        return (Reply::json(404, P::unknown_path_body()), None);
    };
    if let Some((status, body)) = shared.common.take_fault(P::op(&route)) {
        return (Reply::json(status, body), None);
    }
    (P::serve(shared, route, uri.query().unwrap_or(""), body), None)
}

fn respond(reply: Reply, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The value of `name` in a query string, if present.
pub(crate) fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// A fixture's JSON, parsed once when a double starts.
pub(crate) fn fixture(text: &str) -> io::Result<Value> {
    serde_json::from_str(text).map_err(io::Error::other)
}

/// The path's segments after `prefix` (`/v2`), or `None` when it does not start with it.
pub(crate) fn segments<'p>(path: &'p str, prefix: &str) -> Option<Vec<&'p str>> {
    let rest = path.strip_prefix(prefix)?;
    Some(rest.split('/').filter(|s| !s.is_empty()).collect())
}

/// One page of `items`: those after `start`, at most `per_page` of them and never more than the
/// double's page size.
pub(crate) fn page(items: &[Value], start: usize, per_page: usize, page_size: usize) -> (Vec<Value>, Option<usize>) {
    let take = per_page.clamp(1, page_size.max(1));
    let end = (start + take).min(items.len());
    let chunk = items.get(start..end).map(<[Value]>::to_vec).unwrap_or_default();
    (chunk, (end < items.len()).then_some(end))
}

/// The strings of a JSON array (none when it is not one).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}
