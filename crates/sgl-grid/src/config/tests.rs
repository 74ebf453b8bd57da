//! Configuration precedence and validation.

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn defaults_put_sqlite_in_the_data_dir() {
    let config = Config::from_sources(None, &env(&[("HOME", "/home/op")]), &CliOverrides::default()).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.data_dir, PathBuf::from("/home/op/.local/share/sgl-grid"));
    assert_eq!(config.database_url, "sqlite:///home/op/.local/share/sgl-grid/grid.db?mode=rwc");
    assert_eq!((config.min_stake_sgl, config.allow_codeless_registration), (50_000, false));
}

#[test]
fn flags_beat_environment_beat_file() {
    let file = "listen = \"0.0.0.0:1\"\ndata_dir = \"/file\"\nmin_stake_sgl = 7\n[prices.gemma]\ninput_per_m = 1.0\noutput_per_m = 2.0\n";
    let env = env(&[("SGL_LISTEN", "0.0.0.0:2"), ("SGL_DATA_DIR", "/env"), ("SGL_MIN_STAKE_SGL", "9")]);
    let from_env = Config::from_sources(Some(file), &env, &CliOverrides::default()).unwrap();
    assert_eq!(
        (from_env.listen.port(), from_env.data_dir.as_path(), from_env.min_stake_sgl),
        (2, Path::new("/env"), 9)
    );
    let cli = CliOverrides {
        listen: Some("127.0.0.1:3".into()),
        data_dir: Some("/cli".into()),
        database_url: None,
        ..Default::default()
    };
    let from_cli = Config::from_sources(Some(file), &env, &cli).unwrap();
    assert_eq!((from_cli.listen.port(), from_cli.data_dir.as_path()), (3, Path::new("/cli")));
    assert_eq!(from_cli.reference_price("gemma").output_per_m, 2.0);
    assert_eq!(from_cli.reference_price("other"), from_cli.default_price);
    let from_file = Config::from_sources(Some(file), &BTreeMap::new(), &CliOverrides::default()).unwrap();
    assert_eq!((from_file.listen.port(), from_file.min_stake_sgl), (1, 7));
}

#[test]
fn every_problem_is_reported_at_once() {
    let file = "listen = \"nowhere\"\n[prices.m]\ninput_per_m = -1.0\noutput_per_m = 1.0\n";
    let env = env(&[("SGL_MIN_STAKE_SGL", "lots"), ("SGL_ALLOW_CODELESS_REGISTRATION", "maybe")]);
    let error = Config::from_sources(Some(file), &env, &CliOverrides::default()).unwrap_err();
    assert_eq!(error.problems.len(), 4, "{error}");
    let unknown = Config::from_sources(Some("lisen = \"x\""), &BTreeMap::new(), &CliOverrides::default()).unwrap_err();
    assert!(unknown.to_string().contains("unknown field"), "{unknown}");
}

#[test]
fn the_example_config_parses() {
    let text = include_str!("../../config.example.toml");
    Config::from_sources(Some(text), &BTreeMap::new(), &CliOverrides::default()).unwrap();
}

use std::path::Path;

#[test]
fn payments_stake_and_settlement_settings_parse_and_are_checked() {
    let text = "settlement = { operator_bps = 9000, platform_bps = 500, stakers_bps = 0 }\n\
                slash_basis_points = 250\nunstake_cooldown_secs = 60\n[x402]\nnetwork = \"base\"\n";
    let config = Config::from_sources(Some(text), &BTreeMap::new(), &CliOverrides::default()).unwrap();
    assert_eq!(config.shares, Shares::new(9000, 500, 0).unwrap());
    assert_eq!((config.slash_basis_points, config.unstake_cooldown_ms()), (250, 60_000));
    let x402 = config.x402.unwrap();
    assert_eq!((x402.network.chain_id, x402.pay_to), (8453, LOCAL_TREASURY));
    let bad = "settlement = { operator_bps = 9000, platform_bps = 900, stakers_bps = 200 }\n\
               [x402]\nnetwork = \"mainnet\"\nfacilitator_url = \"ftp://x\"\n";
    let error = Config::from_sources(Some(bad), &BTreeMap::new(), &CliOverrides::default()).unwrap_err();
    let text = error.to_string();
    for expected in ["settlement", "x402 network", "facilitator_url", "needs pay_to"] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let off = env(&[("SGL_X402_ENABLED", "false")]);
    assert!(Config::from_sources(None, &off, &CliOverrides::default()).unwrap().x402.is_none());
}

#[test]
fn connection_limits_come_from_environment_over_file_over_defaults_and_are_checked() {
    let defaults = Config::from_sources(None, &BTreeMap::new(), &CliOverrides::default()).unwrap();
    assert_eq!(defaults.connections, crate::server::ConnectionLimits::default());
    let file = "header_read_timeout_secs = 5\nidle_timeout_secs = 30\nmax_connections = 20000\n\
                max_connections_per_address = 12000\n";
    let overrides = env(&[("SGL_MAX_CONNECTIONS_PER_ADDRESS", "15000"), ("SGL_IDLE_TIMEOUT_SECS", "90")]);
    let limits = Config::from_sources(Some(file), &overrides, &CliOverrides::default()).unwrap().connections;
    assert_eq!(
        (limits.header_read_timeout.as_secs(), limits.idle_timeout.as_secs()),
        (5, 90),
        "the file's header timeout, the environment's idle timeout"
    );
    assert_eq!((limits.max_connections, limits.max_connections_per_address), (20_000, 15_000));
    let bad_file = "header_read_timeout_secs = 0\nidle_timeout_secs = 86401\n";
    let bad_env = env(&[("SGL_MAX_CONNECTIONS", "many"), ("SGL_MAX_CONNECTIONS_PER_ADDRESS", "0")]);
    let error = Config::from_sources(Some(bad_file), &bad_env, &CliOverrides::default()).unwrap_err();
    let text = error.to_string();
    assert_eq!(error.problems.len(), 4, "{text}");
    for expected in [
        "header_read_timeout_secs (SGL_HEADER_READ_TIMEOUT_SECS): 0 is not between 1 and 86400",
        "idle_timeout_secs (SGL_IDLE_TIMEOUT_SECS): 86401",
        "SGL_MAX_CONNECTIONS: \"many\" is not a whole number",
        "max_connections_per_address (SGL_MAX_CONNECTIONS_PER_ADDRESS): 0",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn admission_settings_parse_with_defaults_and_bounds() {
    let defaults = Config::from_sources(None, &BTreeMap::new(), &CliOverrides::default()).unwrap();
    let expected = crate::config::AdmissionLimits { wait_secs: 30, max_waiting_per_model: 1024, ack_timeout_secs: 10 };
    assert_eq!(defaults.admission, expected);
    let text = "[admission]\nwait_secs = 5\nmax_waiting_per_model = 3\nack_timeout_secs = 0\n";
    let config = Config::from_sources(Some(text), &BTreeMap::new(), &CliOverrides::default()).unwrap();
    let expected = crate::config::AdmissionLimits { wait_secs: 5, max_waiting_per_model: 3, ack_timeout_secs: 1 };
    assert_eq!(config.admission, expected, "an acknowledgement period of 0 is raised to 1 s");
    let unknown = "[admission]\nwait = 5\n";
    assert!(Config::from_sources(Some(unknown), &BTreeMap::new(), &CliOverrides::default()).is_err());
}

#[test]
fn load_balancers_are_ip_addresses() {
    let text = "proxy_protocol_from = [\"10.0.0.5\", \"fd00::1\"]\n";
    let config = Config::from_sources(Some(text), &BTreeMap::new(), &CliOverrides::default()).unwrap();
    let expected: Vec<std::net::IpAddr> = vec!["10.0.0.5".parse().unwrap(), "fd00::1".parse().unwrap()];
    assert_eq!(config.proxy_protocol_from, expected);
    let none = Config::from_sources(None, &BTreeMap::new(), &CliOverrides::default()).unwrap();
    assert!(none.proxy_protocol_from.is_empty());
    let bad = "proxy_protocol_from = [\"lb.internal\"]\n";
    let error = Config::from_sources(Some(bad), &BTreeMap::new(), &CliOverrides::default()).unwrap_err();
    assert!(error.to_string().contains("proxy_protocol_from: \"lb.internal\" is not an IP address"), "{error}");
}

#[test]
fn compute_prices_are_per_class_over_the_base_price() {
    use sgl_protocol::compute::JobClass;
    let text = "[compute]\nprice_micros_per_gfuel = 300\nprices = { render = 50000, train = 100 }\n";
    let compute = Config::from_sources(Some(text), &BTreeMap::new(), &CliOverrides::default()).unwrap().compute;
    assert_eq!(compute.price_for(JobClass::Render), 50_000, "the file's over the default");
    assert_eq!(compute.price_for(JobClass::Train), 100);
    assert_eq!(compute.price_for(JobClass::Image), 2_000, "the default class price stays");
    assert_eq!(compute.price_for(JobClass::Wasm), 300, "no class price: the base price");
    let unknown = "[compute]\nprices = { quantum = 1 }\n";
    assert!(Config::from_sources(Some(unknown), &BTreeMap::new(), &CliOverrides::default()).is_err());
}

#[test]
fn machines_settings_parse_and_are_checked() {
    use sgl_machines::backend::BackendName;
    let text = "[machines]\nbackends = [\"local\", \"vultr\"]\ngrace_hours = 2\n\
                [machines.local]\nrates = { \"local:1c-512mb\" = 7 }\n[machines.vultr]\nmarkup_bps = 250\n";
    let config = Config::from_sources(Some(text), &BTreeMap::new(), &CliOverrides::default()).unwrap();
    assert_eq!(config.machines.backends, [BackendName::Local, BackendName::Vultr]);
    assert_eq!((config.machines.grace_ms(), config.machines.vultr.markup_bps), (7_200_000, 250));
    assert_eq!(config.machines.local.rates.get("local:1c-512mb"), Some(&7));
    let none = env(&[("SGL_MACHINES_BACKENDS", "")]);
    assert!(Config::from_sources(Some(text), &none, &CliOverrides::default()).unwrap().machines.backends.is_empty());
    let bad = "[machines]\nbackends = [\"aws\"]\n[machines.local]\nssh_ports = [23000, 22000]\nrates = { \"x\" = 0 }\n";
    let error = Config::from_sources(Some(bad), &BTreeMap::new(), &CliOverrides::default()).unwrap_err();
    assert_eq!(error.problems.len(), 3, "{error}");
}

#[test]
fn a_chain_section_names_its_endpoint_contracts_and_signer() {
    let none = Config::from_sources(None, &env(&[("HOME", "/h")]), &CliOverrides::default()).unwrap();
    assert_eq!(none.chain, None, "no [chain]: the grid's own ledger only");
    let file = "[chain]\nrpc_url = \"http://127.0.0.1:8545\"\ncontracts = \"/c.json\"\nsigner_key_file = \"/k\"\npoll_secs = 3\n";
    let chain = Config::from_sources(Some(file), &env(&[("HOME", "/h")]), &CliOverrides::default()).unwrap().chain;
    let chain = chain.expect("a chain");
    assert_eq!(
        (chain.rpc_url.as_str(), chain.contracts.as_path(), chain.signer_key_file.as_path()),
        ("http://127.0.0.1:8545", Path::new("/c.json"), Path::new("/k"))
    );
    assert_eq!(chain.poll, Duration::from_secs(3));
    let from_env = env(&[("HOME", "/h"), ("SGL_CHAIN_RPC_URL", "http://rpc:1"), ("SGL_CHAIN_CONTRACTS", "/e.json")]);
    let chain = Config::from_sources(Some(file), &from_env, &CliOverrides::default()).unwrap().chain.unwrap();
    assert_eq!((chain.rpc_url.as_str(), chain.contracts.as_path()), ("http://rpc:1", Path::new("/e.json")));
    let error = Config::from_sources(Some("[chain]\nrpc_url = \"ws://x\"\n"), &env(&[]), &CliOverrides::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("not an http(s) URL"), "{error}");
    assert!(error.contains("contracts (the file naming the deployed contracts) is missing"), "{error}");
    assert!(error.contains("signer_key_file"), "{error}");
}
