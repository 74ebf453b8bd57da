//! The requester's side: placing an order (checked, then held from the key's credits), seeing
//! and cancelling its orders, and seeing, cancelling and completing its leases. An order or
//! lease of another account is not found, the same as one that does not exist.

use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::market::{LeaseEnd, LeaseRecord, NewOrder};
use sgl_protocol::api::market::{
    BID_WINDOW_SECS, DEFAULT_BID_WINDOW_SECS, LeaseState, LeaseView, MAX_DURATION_SECS, OrderList, OrderRequest,
    OrderView, streamed_micros,
};

use super::{Market, MarketError, new_order_id, views};

/// The most orders a list shows.
const LIST_LIMIT: i64 = 100;

fn bad(field: &'static str, message: impl Into<String>) -> MarketError {
    MarketError::BadField { field, message: message.into() }
}

/// Checks an order request; returns its bid window.
fn check(request: &OrderRequest) -> Result<u32, MarketError> {
    if request.resources.cpu_cores == 0 || request.resources.memory_mb == 0 {
        return Err(bad("resources", "must ask for at least 1 CPU core and 1 MiB of memory"));
    }
    if !(1..=MAX_DURATION_SECS).contains(&request.duration_secs) {
        return Err(bad("duration_secs", format!("must be 1 to {MAX_DURATION_SECS} seconds (30 days)")));
    }
    if request.max_price_per_hour_micros < 1 {
        return Err(bad("max_price_per_hour_micros", "must be at least 1 micro-USD per hour"));
    }
    let window = request.bid_window_secs.unwrap_or(DEFAULT_BID_WINDOW_SECS);
    if !BID_WINDOW_SECS.contains(&window) {
        return Err(bad(
            "bid_window_secs",
            format!("must be {} to {} seconds", BID_WINDOW_SECS.start(), BID_WINDOW_SECS.end()),
        ));
    }
    let secs = i64::try_from(request.duration_secs).unwrap_or(i64::MAX);
    if streamed_micros(request.max_price_per_hour_micros, secs) < 1 {
        return Err(bad("max_price_per_hour_micros", "over duration_secs comes to less than one micro-USD"));
    }
    Ok(window)
}

impl Market {
    /// Places `caller`'s order: checked, its maximum over its duration held from the key's
    /// credits, its job (if any) reserved for the lease.
    pub async fn place(&self, caller: &ApiKeyRecord, request: &OrderRequest) -> Result<OrderView, MarketError> {
        let bid_window_secs = check(request)?;
        let wallet = self.requester_wallet(caller).await?;
        let id = new_order_id();
        let order = NewOrder {
            id: &id,
            api_key_id: caller.id,
            account_id: caller.account(),
            requester_wallet: wallet.as_deref(),
            class: request.class,
            resources: request.resources,
            duration_secs: i64::try_from(request.duration_secs).unwrap_or(i64::MAX),
            max_price_per_hour: request.max_price_per_hour_micros,
            bid_window_secs,
            job_id: request.job_id.as_ref().map(|job| job.as_str()),
        };
        self.store().place_market_order(&order, self.now_ms()).await?;
        tracing::info!(
            target: "sgl::events::market", order = %id, class = %request.class, duration_secs = request.duration_secs,
            max_price_per_hour_micros = request.max_price_per_hour_micros, "order placed"
        );
        self.show(caller, &id).await
    }

    /// The wallet behind `caller`'s key or its account, lowercase: its own nodes may not bid.
    async fn requester_wallet(&self, caller: &ApiKeyRecord) -> Result<Option<String>, MarketError> {
        if let Some(wallet) = &caller.wallet {
            return Ok(Some(wallet.to_ascii_lowercase()));
        }
        let root = self.store().api_key(caller.account()).await?;
        Ok(root.and_then(|key| key.wallet).map(|wallet| wallet.to_ascii_lowercase()))
    }

    /// `caller`'s orders, newest first (without bids).
    pub async fn list(&self, caller: &ApiKeyRecord) -> Result<OrderList, MarketError> {
        let now = self.now_ms();
        let orders = self.store().account_market_orders(caller.account(), LIST_LIMIT).await?;
        let mut data = Vec::with_capacity(orders.len());
        for order in &orders {
            let lease = self.store().order_lease(&order.id).await?;
            data.push(views::order(order, &[], lease.as_ref(), now)?);
        }
        Ok(OrderList { object: "list".to_owned(), data })
    }

    /// `caller`'s order `id` with its bids and lease.
    pub async fn show(&self, caller: &ApiKeyRecord, id: &str) -> Result<OrderView, MarketError> {
        let order = self.store().market_order(id).await?.filter(|order| order.account_id == caller.account());
        let order = order.ok_or(MarketError::NotFound("order in this account"))?;
        let bids = self.store().order_bids(id).await?;
        let lease = self.store().order_lease(id).await?;
        views::order(&order, &bids, lease.as_ref(), self.now_ms())
    }

    /// Cancels `caller`'s open order: its hold back whole, its bids lost.
    pub async fn cancel_order(&self, caller: &ApiKeyRecord, id: &str) -> Result<OrderView, MarketError> {
        let cancelled = self.store().cancel_market_order(id, caller.account(), self.now_ms()).await;
        match cancelled {
            Err(sgl_grid_store::market::MarketStoreError::NotFound) => {
                return Err(MarketError::NotFound("order in this account"));
            }
            other => other?,
        };
        tracing::info!(target: "sgl::events::market", order = %id, "order cancelled");
        self.show(caller, id).await
    }

    /// `caller`'s lease `id`.
    pub async fn lease(&self, caller: &ApiKeyRecord, id: &str) -> Result<LeaseView, MarketError> {
        let lease = self.requester_lease(caller, id).await?;
        views::lease(&lease, self.now_ms())
    }

    /// Ends `caller`'s active lease now, cancelled or completed: what streamed is paid, the rest
    /// refunded.
    pub async fn end_lease(&self, caller: &ApiKeyRecord, id: &str, end: LeaseEnd) -> Result<LeaseView, MarketError> {
        self.requester_lease(caller, id).await?;
        self.close(id, end, self.now_ms()).await
    }

    async fn requester_lease(&self, caller: &ApiKeyRecord, id: &str) -> Result<LeaseRecord, MarketError> {
        let lease = self.store().market_lease(id).await?.filter(|lease| lease.account_id == caller.account());
        lease.ok_or(MarketError::NotFound("lease in this account"))
    }

    /// Closes lease `id` at `at_ms` and returns its view.
    pub(super) async fn close(&self, id: &str, end: LeaseEnd, at_ms: i64) -> Result<LeaseView, MarketError> {
        let now = self.now_ms();
        let lease = self.store().market_lease(id).await?.ok_or(MarketError::NotFound("lease"))?;
        let closed = match (&lease.chain_stream, self.chain()) {
            (Some(stream), Some(grid)) if lease.state == LeaseState::Active => {
                let streamed = crate::chain::leases::close_stream(grid, stream).await?;
                self.store().close_chain_market_lease(id, end, streamed, at_ms, now).await?
            }
            _ => self.store().close_market_lease(id, end, at_ms, self.shares(), now).await?,
        };
        tracing::info!(
            target: "sgl::events::market", lease = %id, state = closed.state.as_str(), paid_micros = closed.paid_micros,
            refunded_micros = closed.refunded_micros, "lease ended"
        );
        views::lease(&closed, now)
    }
}
