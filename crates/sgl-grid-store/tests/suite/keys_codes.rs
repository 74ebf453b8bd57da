//! API keys, registration codes and the binary allowlist.

use sgl_grid_store::Store;
use sgl_grid_store::api_keys::NewApiKey;
use sgl_grid_store::registration::ConsumeCodeError;

const NOW: i64 = 1_700_000_000_000;

pub(crate) async fn api_keys_are_found_by_hash_until_revoked(store: &Store) {
    let key = NewApiKey {
        key_hash: "h1",
        prefix: "x402c_ab",
        label: "ci",
        wallet: Some("0xw"),
        account_id: None,
        expires_at: None,
    };
    let created = store.create_api_key(&key, NOW).await.unwrap();
    assert_eq!(
        (created.prefix.as_str(), created.wallet.as_deref(), created.revoked_at),
        ("x402c_ab", Some("0xw"), None)
    );
    let other = store
        .create_api_key(
            &NewApiKey {
                key_hash: "h2",
                prefix: "x402c_cd",
                label: "",
                wallet: None,
                account_id: None,
                expires_at: None,
            },
            NOW,
        )
        .await
        .unwrap();
    assert_ne!(created.id, other.id);
    assert_eq!(store.find_live_api_key("h1").await.unwrap(), Some(created.clone()));
    assert_eq!(store.find_live_api_key("nope").await.unwrap(), None);
    assert_eq!(store.api_key(created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(store.api_key(999).await.unwrap(), None);
    assert!(store.create_api_key(&key, NOW).await.is_err(), "a hash is stored once");
    assert!(store.revoke_api_key(created.id, NOW + 5).await.unwrap());
    assert!(!store.revoke_api_key(created.id, NOW + 6).await.unwrap(), "revoking twice does nothing");
    assert_eq!(store.find_live_api_key("h1").await.unwrap(), None);
    let listed = store.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].revoked_at, Some(NOW + 5));
    // Keys created in an account list together; another root's keys do not.
    let child = NewApiKey {
        key_hash: "h3",
        prefix: "x402c_ef",
        label: "ci-child",
        wallet: None,
        account_id: Some(other.id),
        expires_at: None,
    };
    let child = store.create_api_key(&child, NOW).await.unwrap();
    assert_eq!((child.account(), other.account()), (other.id, other.id));
    let account: Vec<i64> = store.account_api_keys(other.id).await.unwrap().iter().map(|k| k.id).collect();
    assert_eq!(account, vec![other.id, child.id]);
    assert_eq!(store.account_api_keys(created.id).await.unwrap().len(), 1);
    // A key with an expiry keeps it; it is live until that millisecond, not at it.
    let expiring = NewApiKey {
        key_hash: "h4",
        prefix: "x402c_gh",
        label: "wallet sign-in",
        wallet: Some("0xw"),
        account_id: Some(other.id),
        expires_at: Some(NOW + 1_000),
    };
    let expiring = store.create_api_key(&expiring, NOW).await.unwrap();
    assert_eq!(expiring.expires_at, Some(NOW + 1_000));
    let found = store.find_live_api_key("h4").await.unwrap().expect("not revoked, so found");
    assert_eq!((found.live_at(NOW + 999), found.live_at(NOW + 1_000)), (true, false));
    assert_eq!((child.expires_at, child.live_at(NOW + 10_000_000)), (None, true));
}

pub(crate) async fn registration_codes_are_single_use_and_wallet_bound(store: &Store) {
    store.create_registration_code("c1", "0xA", NOW, NOW + 600_000).await.unwrap();
    store.create_registration_code("c2", "0xA", NOW, NOW + 1).await.unwrap();
    let wrong_wallet = store.consume_registration_code("c1", "0xB", "node-1", NOW).await;
    assert!(matches!(wrong_wallet, Err(ConsumeCodeError::WrongWallet)));
    store.consume_registration_code("c1", "0xA", "node-1", NOW).await.unwrap();
    let reused = store.consume_registration_code("c1", "0xA", "node-2", NOW).await;
    assert!(matches!(reused, Err(ConsumeCodeError::AlreadyUsed)));
    let expired = store.consume_registration_code("c2", "0xA", "node-3", NOW + 1).await;
    assert!(matches!(expired, Err(ConsumeCodeError::Expired)));
    let unknown = store.consume_registration_code("c3", "0xA", "node-4", NOW).await;
    assert!(matches!(unknown, Err(ConsumeCodeError::Unknown)));
}

/// Registering with a code is one event: the code is used only if the node is recorded.
pub(crate) async fn a_code_is_used_only_by_a_node_that_is_recorded(store: &Store) {
    use sgl_grid_store::nodes::NewNode;
    let node = |id, key| NewNode {
        id,
        public_key: key,
        wallet: "0xA",
        tee_type: "linux_se",
        token_hash: id,
        token_expires_at: NOW + 1000,
        cpu_cores: 2,
        ram_gb: 24.0,
        gpu_model: "none",
        manifest: None,
    };
    store.insert_node(&node("n1", "k1"), NOW).await.unwrap();
    store.create_registration_code("c1", "0xA", NOW, NOW + 600_000).await.unwrap();
    // The same identity key again: the node cannot be recorded, so the code stays unused.
    let refused = store.insert_node_with_code(&node("n2", "k1"), "c1", NOW).await;
    assert!(matches!(refused, Err(ConsumeCodeError::Store(_))), "{refused:?}");
    assert_eq!(store.node("n2").await.unwrap(), None);
    let recorded = store.insert_node_with_code(&node("n3", "k3"), "c1", NOW).await.unwrap();
    assert_eq!((recorded.id.as_str(), recorded.wallet.as_str()), ("n3", "0xA"));
    let reused = store.insert_node_with_code(&node("n4", "k4"), "c1", NOW).await;
    assert!(matches!(reused, Err(ConsumeCodeError::AlreadyUsed)), "{reused:?}");
    assert_eq!(store.node("n4").await.unwrap(), None, "a used code records no node");
}

pub(crate) async fn concurrent_registrations_with_one_code_let_one_win(store: &Store) {
    store.create_registration_code("race", "0xA", NOW, NOW + 600_000).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.spawn(async move { store.consume_registration_code("race", "0xA", &format!("node-{n}"), NOW).await });
    }
    let mut n_ok = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(()) => n_ok += 1,
            Err(ConsumeCodeError::AlreadyUsed) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(n_ok, 1);
}

pub(crate) async fn binary_allowlist_normalises_and_lists(store: &Store) {
    let upper = "AB".repeat(32);
    assert!(store.allow_binary(&upper, NOW).await.unwrap());
    assert!(!store.allow_binary(&upper.to_lowercase(), NOW).await.unwrap(), "case-insensitive");
    assert!(store.allow_binary(&"01".repeat(32), NOW).await.unwrap());
    assert_eq!(store.allowed_binaries().await.unwrap(), vec!["01".repeat(32), "ab".repeat(32)]);
    assert!(store.disallow_binary(&upper).await.unwrap());
    assert!(!store.disallow_binary(&upper).await.unwrap());
    assert_eq!(store.allowed_binaries().await.unwrap(), vec!["01".repeat(32)]);
}
