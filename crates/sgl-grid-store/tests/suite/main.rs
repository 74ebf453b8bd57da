//! The store suite: every case runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL comes from `SGL_TEST_DATABASE_URL` (an admin URL; each test creates and drops its
//! own database, so tests run in parallel). Without it the PostgreSQL half prints a notice and
//! passes locally, and fails under `CI=true`.

mod chain;
mod compute;
mod devices;
mod fixture;
mod group;
mod jobs;
mod keys_codes;
mod ledger;
mod machines;
mod market;
mod nodes;
mod payments;
mod replicas;
mod reports;
mod stake;

/// Instantiates each case once per backend.
macro_rules! store_suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::fixture::sqlite().await;
                    crate::$module::$case(&db.store).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = crate::fixture::postgres().await else { return };
                    crate::$module::$case(&db.store).await;
                    db.finish().await;
                }
            )*
        }
    };
}

store_suite!(
    machines::a_reachable_machine_is_paid_for_once,
    machines::a_machine_that_never_serves_is_refunded_in_full,
    machines::extensions_are_paid_and_resizes_are_free_under_a_guard,
    machines::states_move_once_and_warnings_happen_once,
    machines::a_password_is_taken_once,
    market::an_order_is_matched_by_price_then_reputation_and_its_excess_hold_refunded,
    market::a_lease_streams_by_settlements_and_a_close_pays_what_streamed,
    market::an_exhausted_lease_pays_its_whole_deposit_and_never_more,
    market::unfilled_and_cancelled_orders_are_refunded_whole_once,
    market::a_bound_job_is_leased_only_to_its_lease_node,
    market::concurrent_settlements_and_closes_pay_each_micro_unit_once,
    market::a_lease_on_the_chain_books_what_its_stream_paid,
    ledger::grant_hold_settle_and_release_balance,
    ledger::malformed_and_unbalanced_transactions_are_refused,
    ledger::overdrafts_are_refused_and_change_nothing,
    ledger::idempotency_keys_apply_once_and_refuse_conflicts,
    ledger::concurrent_debits_never_overdraw,
    ledger::concurrent_posts_of_one_key_apply_once,
    keys_codes::api_keys_are_found_by_hash_until_revoked,
    keys_codes::registration_codes_are_single_use_and_wallet_bound,
    keys_codes::concurrent_registrations_with_one_code_let_one_win,
    keys_codes::a_code_is_used_only_by_a_node_that_is_recorded,
    keys_codes::binary_allowlist_normalises_and_lists,
    nodes::nodes_register_once_and_authenticate_by_token,
    nodes::rotated_tokens_overlap_until_the_new_one_is_used,
    nodes::challenges_are_single_use_and_expire,
    nodes::prices_outcomes_and_tamper_evidence,
    nodes::a_jobs_outcome_is_counted_with_its_end,
    reports::usage_is_summed_per_day_key_and_model_within_one_account,
    reports::the_newest_tamper_events_and_a_wallets_nodes_are_listed,
    reports::an_accounts_credits_are_summed_per_day,
    jobs::jobs_finish_exactly_once,
    jobs::a_job_and_its_hold_are_recorded_together_and_settle_once,
    jobs::short_jobs_settle_every_share_to_the_micro_unit,
    jobs::a_settlement_under_a_used_key_changes_nothing,
    group::a_group_of_job_writes_comes_to_what_the_writes_one_by_one_would,
    devices::device_logins_are_approved_once_and_expire,
    payments::x402_payments_settle_once_and_never_overdraw,
    payments::a_wallet_account_is_bound_once,
    payments::a_payment_is_settled_and_credited_in_one_transaction,
    payments::a_payout_moves_both_ledgers_in_one_transaction,
    stake::unstaking_cools_down_before_withdrawal_and_slashing_reaches_unbonding,
    stake::operator_nonces_are_single_use,
    stake::settings_are_set_once,
    stake::a_fault_that_took_nothing_is_not_slashed_again,
    chain::chain_events_are_booked_once_and_follow_the_contracts,
    chain::payouts_leave_the_ledger_once_and_are_batched_once,
    compute::slices_go_to_distinct_operators_and_quorum_pays_agreeing_nodes,
    compute::a_job_its_credits_cannot_cover_is_refused_whole,
    compute::failed_and_expired_attempts_requeue_until_the_budget_is_spent,
    compute::a_silent_node_loses_its_lease_and_another_finishes_the_slice,
    compute::cancel_refunds_the_unused_escrow_once,
    compute::a_canary_goes_to_its_node_only_and_a_wrong_answer_is_rejected,
    compute::an_llm_job_goes_only_to_nodes_serving_its_model,
    compute::a_chained_job_leases_each_slice_after_the_one_before_is_done,
    compute::a_native_job_goes_only_to_nodes_with_its_engine,
);

/// Cases for what only PostgreSQL grids have (several replicas).
macro_rules! postgres_only {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod postgres_only {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = crate::fixture::postgres().await else { return };
                    crate::$module::$case(&db.store).await;
                    db.finish().await;
                }
            )*
        }
    };
}

postgres_only!(
    replicas::the_bus_delivers_in_order_and_large_messages_through_the_table,
    replicas::one_replica_at_a_time_holds_the_leaders_lock,
    replicas::nodes_live_state_is_replaced_only_by_a_later_one,
    replicas::silent_replicas_and_the_jobs_they_hold_are_found,
    replicas::reservations_are_taken_once_by_their_owner,
);

#[tokio::test]
async fn sqlite_has_no_bus_and_no_leaders_lock() {
    let db = fixture::sqlite().await;
    replicas::sqlite_has_no_bus_and_no_lock(&db.store).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ledger_audit() {
    let db = fixture::sqlite().await;
    ledger::the_audit_passes_a_sound_ledger_and_names_each_planted_fault(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_audit() {
    let Some(db) = fixture::postgres().await else { return };
    ledger::the_audit_passes_a_sound_ledger_and_names_each_planted_fault(&db).await;
    db.finish().await;
}

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_reruns_no_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.db");
    let store = sgl_grid_store::Store::open_sqlite_file(&path).await.unwrap();
    assert!(store.allow_binary(&"ab".repeat(32), 1).await.unwrap());
    store.close().await;
    let reopened = sgl_grid_store::Store::open_sqlite_file(&path).await.unwrap();
    assert_eq!(reopened.allowed_binaries().await.unwrap(), vec!["ab".repeat(32)]);
    let wal = std::fs::read_to_string(dir.path().join("grid.db-wal")).is_ok() || path.exists();
    assert!(wal);
}

#[tokio::test]
async fn a_new_sqlite_database_and_its_wal_and_shm_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.db");
    let store = sgl_grid_store::Store::open_sqlite_file(&path).await.unwrap();
    assert!(store.allow_binary(&"ab".repeat(32), 1).await.unwrap());
    for file in [path.clone(), dir.path().join("grid.db-wal"), dir.path().join("grid.db-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store.close().await;
    // A URL that may not create a database still finds none (no empty file is made for it).
    let missing = dir.path().join("missing.db");
    assert!(sgl_grid_store::Store::open(&format!("sqlite://{}?mode=rw", missing.display())).await.is_err());
    assert!(std::fs::metadata(&missing).is_err(), "nothing created for mode=rw");
    // An in-memory database has no file.
    sgl_grid_store::Store::open("sqlite::memory:").await.unwrap().close().await;
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_a_clear_error() {
    let error = sgl_grid_store::Store::open("mysql://localhost/db").await.unwrap_err();
    assert!(error.to_string().contains("sqlite://PATH or postgres://"), "{error}");
}
