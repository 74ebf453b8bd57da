//! The policy file: parsed exactly, refused when wrong, written back the same; and the quote:
//! class, durations, resources, the order's maximum and the standing bid.

use super::*;

const EXAMPLE: &str = r#"
[resources]
cpu_cores = 4
memory_mb = 8192
gpus = 0

[classes.wasm]
usd_per_hour = 0.12
min_duration_secs = 60
max_duration_secs = 86400

[classes.render]
usd_per_hour = "1.000001"
"#;

fn order(class: JobClass, duration_secs: u64, max: i64) -> MarketOrder {
    MarketOrder {
        id: "mo_1".into(),
        class,
        resources: Resources { cpu_cores: 2, memory_mb: 2048, gpus: 0 },
        duration_secs,
        max_price_per_hour_micros: max,
        window_ends_at_ms: 0,
        own_bid_micros: None,
    }
}

#[test]
fn a_policy_parses_exactly_and_writes_back_the_same() {
    let policy = PricePolicy::parse(EXAMPLE).unwrap();
    assert_eq!(policy.resources, Some(Resources { cpu_cores: 4, memory_mb: 8192, gpus: 0 }));
    let wasm = policy.classes[&JobClass::Wasm];
    assert_eq!(
        (wasm.price_per_hour_micros, wasm.min_duration_secs, wasm.max_duration_secs),
        (120_000, Some(60), Some(86_400))
    );
    assert_eq!(policy.classes[&JobClass::Render].price_per_hour_micros, 1_000_001);
    let written = policy.to_toml();
    assert!(written.contains("usd_per_hour = 0.12"), "{written}");
    assert_eq!(PricePolicy::parse(&written).unwrap(), policy);
    assert_eq!(PricePolicy::parse("").unwrap(), PricePolicy::default());
}

#[test]
fn a_wrong_policy_is_refused_with_the_reason() {
    let refused = |text: &str| PricePolicy::parse(text).unwrap_err().to_string();
    assert!(refused("[classes.quantum]\nusd_per_hour = 1\n").contains("unknown job class"));
    assert!(refused("[classes.wasm]\nusd_per_hour = 0.0000001\n").contains("more than 6 decimals"));
    assert!(refused("[classes.wasm]\nusd_per_hour = 0\n").contains("more than 0"));
    assert!(refused("[classes.wasm]\nusd_per_hour = -1\n").contains("usd_per_hour"));
    assert!(refused("[classes.wasm]\nusd_per_hour = true\n").contains("must be a number"));
    assert!(
        refused("[classes.wasm]\nusd_per_hour = 1\nmin_duration_secs = 9\nmax_duration_secs = 8\n").contains("above")
    );
    assert!(refused("[classes.wasm]\nusd_per_hour = 1\nprice = 2\n").contains("unknown field"));
    assert!(refused("[resources]\ncpu_cores = 0\nmemory_mb = 1\n").contains("at least 1 CPU"));
    assert!(refused("[classes.wasm\n").contains("not valid"));
}

#[test]
fn the_quote_is_the_policy_price_for_orders_the_node_takes() {
    let policy = PricePolicy::parse(EXAMPLE).unwrap();
    let machine = Resources { cpu_cores: 64, memory_mb: 1 << 20, gpus: 8 };
    assert_eq!(policy.quote(&order(JobClass::Wasm, 600, 200_000), &machine), Ok(120_000));
    assert_eq!(policy.quote(&order(JobClass::Wasm, 600, 120_000), &machine), Ok(120_000), "at the maximum");
    assert_eq!(
        policy.quote(&order(JobClass::Wasm, 600, 119_999), &machine),
        Err(Skip::AboveMaximum { price: 120_000, max: 119_999 })
    );
    assert_eq!(policy.quote(&order(JobClass::Llm, 600, 1), &machine), Err(Skip::NoPrice(JobClass::Llm)));
    assert_eq!(
        policy.quote(&order(JobClass::Wasm, 59, 200_000), &machine),
        Err(Skip::TooShort { duration: 59, min: 60 })
    );
    assert_eq!(
        policy.quote(&order(JobClass::Wasm, 86_401, 200_000), &machine),
        Err(Skip::TooLong { duration: 86_401, max: 86_400 })
    );
    let mut big = order(JobClass::Wasm, 600, 200_000);
    big.resources.cpu_cores = 8;
    assert_eq!(policy.quote(&big, &machine), Err(Skip::Resources), "the policy offers 4 cores of the 64");
    let detected = PricePolicy { resources: None, ..policy.clone() };
    assert_eq!(detected.quote(&big, &machine), Ok(120_000), "without [resources], the machine's");
    let mut standing = order(JobClass::Wasm, 600, 200_000);
    standing.own_bid_micros = Some(120_000);
    assert_eq!(policy.quote(&standing, &machine), Err(Skip::AlreadyBid(120_000)));
    standing.own_bid_micros = Some(150_000);
    assert_eq!(policy.quote(&standing, &machine), Ok(120_000), "a changed policy bids again");
}

#[test]
fn a_policy_is_saved_and_loaded_from_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(PricePolicy::load(dir.path()).unwrap(), None);
    let policy = PricePolicy::parse(EXAMPLE).unwrap();
    let path = policy.save(dir.path()).unwrap();
    assert_eq!(path, dir.path().join(POLICY_FILE));
    assert_eq!(PricePolicy::load(dir.path()).unwrap(), Some(policy));
}
