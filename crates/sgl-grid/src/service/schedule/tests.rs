//! Ranking and filtering of candidate nodes.

use std::collections::{BTreeMap, HashMap};

use sgl_grid_store::nodes::CustomPrice;
use sgl_protocol::ids::NodeId;

use super::*;
use crate::config::CliOverrides;

const NOW: i64 = 1_000_000;

fn config() -> Config {
    Config::from_sources(None, &BTreeMap::new(), &CliOverrides::default()).unwrap()
}

fn node(reputation: f64) -> LiveNode {
    LiveNode {
        node_id: NodeId::random(),
        public_key: String::new(),
        wallet: "w".into(),
        tee_type: "linux_se".into(),
        models: vec!["m".into()],
        encryption_key: String::new(),
        keybind: None,
        context_size: 4096,
        max_concurrent_jobs: 2,
        current_load: 0.0,
        binary_hash: String::new(),
        model_sha256: None,
        last_seen_ms: NOW,
        jobs_in_flight: 0,
        elsewhere: 0,
        off_grid: false,
        attestation: crate::registry::Attestation::Verified,
        reputation,
        binary_allowed: true,
        staked: true,
        custom_prices: HashMap::new(),
        signs_v2: false,
        cluster: None,
        workloads: Vec::new(),
        engines: Vec::new(),
        embedding_models: Vec::new(),
    }
}

#[test]
fn cheapest_first_then_reputation_then_load() {
    let config = config();
    let mut cheap = node(0.1);
    cheap.custom_prices.insert("m".into(), CustomPrice { input_per_m: 0.05, output_per_m: 0.2 });
    let reputable = node(0.9);
    let mut busy_reputable = node(0.9);
    busy_reputable.jobs_in_flight = 1;
    let ids = [cheap.node_id, reputable.node_id, busy_reputable.node_id];
    let ranked = rank(&config, vec![busy_reputable, reputable, cheap], &Requirement::model("m"), NOW);
    assert_eq!(ranked.iter().map(|c| c.node.node_id).collect::<Vec<_>>(), ids);
    assert!(ranked[0].is_custom && !ranked[1].is_custom);
}

#[test]
fn unservable_nodes_and_prices_over_the_cap_are_left_out() {
    let config = config();
    let mut offline = node(0.5);
    offline.last_seen_ms = NOW - 16_000;
    let mut off_grid = node(0.5);
    off_grid.off_grid = true;
    let mut full = node(0.5);
    full.jobs_in_flight = 2;
    let mut unstaked = node(0.5);
    unstaked.staked = false;
    let mut not_allowed = node(0.5);
    not_allowed.binary_allowed = false;
    let mut other_model = node(0.5);
    other_model.models = vec!["x".into()];
    let mut unattested = node(0.5);
    unattested.attestation = crate::registry::Attestation::Missing;
    let mut changed_binary = node(0.5);
    changed_binary.attestation = crate::registry::Attestation::BinaryChanged;
    let mut pricey = node(0.5);
    pricey.custom_prices.insert("m".into(), CustomPrice { input_per_m: 1.0, output_per_m: 1.0 });
    let fine = node(0.5);
    let fine_id = fine.node_id;
    let nodes = vec![
        offline,
        off_grid,
        full,
        unstaked,
        not_allowed,
        other_model,
        unattested,
        changed_binary,
        pricey.clone(),
        fine,
    ];
    let capped = Requirement { max_price: Some(0.5), ..Requirement::model("m") };
    let ranked = rank(&config, nodes, &capped, NOW);
    assert_eq!(ranked.iter().map(|c| c.node.node_id).collect::<Vec<_>>(), vec![fine_id]);
    assert_eq!(
        rank(&config, vec![pricey], &Requirement::model("m"), NOW).len(),
        1,
        "without a cap the pricey node qualifies"
    );
}

#[test]
fn prompts_go_only_to_nodes_whose_context_holds_them() {
    let config = config();
    let mut small = node(0.5);
    small.context_size = 512;
    let large = node(0.5);
    let large_id = large.node_id;
    let long_prompt = Requirement { prompt_tokens: estimate_tokens(8_000), ..Requirement::model("m") };
    let ranked = rank(&config, vec![small, large], &long_prompt, NOW);
    assert_eq!(ranked.iter().map(|c| c.node.node_id).collect::<Vec<_>>(), vec![large_id]);
}

#[test]
fn the_best_node_is_the_first_ranked_one_that_is_usable() {
    let config = config();
    let mut cheap = node(0.1);
    cheap.custom_prices.insert("m".into(), CustomPrice { input_per_m: 0.05, output_per_m: 0.2 });
    let reputable = node(0.9);
    let mut busy_reputable = node(0.9);
    busy_reputable.jobs_in_flight = 1;
    let mut offline = node(1.0);
    offline.last_seen_ms = NOW - 16_000;
    let nodes = vec![offline, busy_reputable, reputable, cheap];
    let wanted = Requirement::model("m");
    let ranked = rank(&config, nodes.clone(), &wanted, NOW);
    let pick = |usable: &dyn Fn(&LiveNode, ReferencePrice) -> bool| {
        best(&config, &nodes, &wanted, NOW, usable).map(|c| (c.node.node_id, c.is_custom))
    };
    assert_eq!(pick(&|_, _| true), Some((ranked[0].node.node_id, true)));
    let not_first = |node: &LiveNode, _| node.node_id != ranked[0].node.node_id;
    assert_eq!(pick(&not_first), Some((ranked[1].node.node_id, false)));
    assert_eq!(pick(&|_, price: ReferencePrice| price.input_per_m > 1.0), None);
}

#[test]
fn a_node_says_why_it_gets_no_work() {
    use crate::registry::Attestation;
    use sgl_protocol::api::node::NotServingReason as Why;
    assert!(node(0.5).not_serving(NOW, 15_000).is_empty());
    let mut idle = node(0.5);
    idle.last_seen_ms = NOW - 16_000;
    idle.attestation = Attestation::BinaryChanged;
    idle.staked = false;
    idle.models.clear();
    assert_eq!(idle.not_serving(NOW, 15_000), vec![Why::Offline, Why::BinaryChanged, Why::BelowStake, Why::NoModel]);
    assert_eq!(Attestation::of(true, Some("AB"), "ab"), Attestation::Verified);
    assert_eq!(Attestation::of(true, Some("ab"), "cd"), Attestation::BinaryChanged);
    assert_eq!(Attestation::of(true, None, "cd"), Attestation::BinaryChanged);
    assert_eq!(Attestation::of(false, Some("ab"), "ab"), Attestation::Missing);
}

#[test]
fn a_cluster_is_served_only_by_its_nodes() {
    let config = config();
    let mut eu = node(0.5);
    eu.cluster = Some("gpu-eu".into());
    let mut us = node(0.5);
    us.cluster = Some("gpu-us".into());
    let plain = node(0.5);
    let eu_id = eu.node_id;
    let nodes = vec![eu, us, plain];
    let in_eu = Requirement { cluster: Some("gpu-eu"), ..Requirement::model("m") };
    let ranked = rank(&config, nodes.clone(), &in_eu, NOW);
    assert_eq!(ranked.iter().map(|c| c.node.node_id).collect::<Vec<_>>(), vec![eu_id]);
    assert_eq!(rank(&config, nodes, &Requirement::model("m"), NOW).len(), 3, "no cluster asked: any node");
}
