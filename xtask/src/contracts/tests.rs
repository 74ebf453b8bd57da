//! The extraction's exact output, and the committed `contracts/abi` files held to the shape
//! `sol!` reads and to the signatures and events the grid is written against.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{CONTRACTS, abi_file};
use crate::command::workspace_root;

#[test]
fn abi_file_keeps_only_abi_and_bytecode_sorted_and_pretty() {
    let artifact = json!({
        "abi": [{"type": "function", "name": "f", "inputs": [], "outputs": [], "stateMutability": "view"}],
        "bytecode": {"object": "0x6080", "sourceMap": "1:2:3", "linkReferences": {}},
        "deployedBytecode": {"object": "0x6081", "immutableReferences": {}},
        "methodIdentifiers": {"f()": "26121ff0"},
        "rawMetadata": "{}",
        "id": 7
    });
    let want = r#"{
  "abi": [
    {
      "inputs": [],
      "name": "f",
      "outputs": [],
      "stateMutability": "view",
      "type": "function"
    }
  ],
  "bytecode": {
    "object": "0x6080"
  },
  "deployedBytecode": {
    "object": "0x6081"
  }
}
"#;
    assert_eq!(abi_file(&artifact).expect("extracts"), want);
}

#[test]
fn abi_file_refuses_an_artifact_without_code() {
    let no_code = json!({"abi": [], "bytecode": {"object": "0x"}, "deployedBytecode": {"object": "0x"}});
    assert!(abi_file(&no_code).is_err(), "an interface has no bytecode to deploy");
    assert!(abi_file(&json!({"bytecode": {"object": "0x60"}})).is_err(), "no abi");
}

/// `name(type,…)` with `indexed` for event inputs and ` returns (…)` for function outputs.
fn signature(item: &Value) -> String {
    let list = |key: &str| {
        let params = item[key].as_array().map(Vec::as_slice).unwrap_or_default();
        params
            .iter()
            .map(|p| {
                let ty = p["type"].as_str().expect("a parameter type");
                if p["indexed"] == json!(true) { format!("{ty} indexed") } else { ty.to_owned() }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let kind = item["type"].as_str().expect("an item type");
    let name = item["name"].as_str().unwrap_or_default();
    let mut text = format!("{kind} {name}({})", list("inputs"));
    if kind == "function" && !list("outputs").is_empty() {
        text.push_str(&format!(" returns ({})", list("outputs")));
    }
    text
}

/// What the grid's Rust side calls and listens to, as agreed (adding is fine, changing is not).
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "TestToken",
        &[
            "constructor (string,string)",
            "function mint(address,uint256)",
            "function DOMAIN_SEPARATOR() returns (bytes32)",
            "function decimals() returns (uint8)",
            "function transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
            "function authorizationState(address,bytes32) returns (bool)",
            "function balanceOf(address) returns (uint256)",
            "function approve(address,uint256) returns (bool)",
            "event AuthorizationUsed(address indexed,bytes32 indexed)",
            "event Transfer(address indexed,address indexed,uint256)",
        ],
    ),
    (
        "Staking",
        &[
            "constructor (address,address,address)",
            "function UNSTAKE_DELAY() returns (uint256)",
            "function SLASHER_ROLE() returns (bytes32)",
            "function stake(uint256)",
            "function requestUnstake(uint256)",
            "function withdraw()",
            "function slash(address,uint256,bytes32)",
            "function stakeOf(address) returns (uint256,uint256,uint64)",
            "function grantRole(bytes32,address)",
            "event Staked(address indexed,uint256,uint256)",
            "event UnstakeRequested(address indexed,uint256,uint256,uint64)",
            "event Withdrawn(address indexed,uint256)",
            "event Slashed(address indexed,uint256,bytes32)",
        ],
    ),
    (
        "ProviderRegistry",
        &[
            "constructor (address,uint256,address,address)",
            "function DEREGISTER_DELAY() returns (uint256)",
            "function SLASHER_ROLE() returns (bytes32)",
            "function VERIFIER_ROLE() returns (bytes32)",
            "function register(uint256,bytes32)",
            "function topUp(uint256)",
            "function requestDeregister()",
            "function withdrawBond()",
            "function slash(address,uint256,bytes32)",
            "function setReputation(address,uint32)",
            "function providerOf(address) returns (bool,uint256,bytes32,uint64,uint32)",
            "function minBond() returns (uint256)",
            "event Registered(address indexed,uint256,bytes32)",
            "event BondToppedUp(address indexed,uint256,uint256)",
            "event DeregisterRequested(address indexed,uint64)",
            "event Deregistered(address indexed,uint256)",
            "event BondSlashed(address indexed,uint256,bytes32)",
            "event ReputationSet(address indexed,uint32)",
        ],
    ),
    (
        "Escrow",
        &[
            "constructor (address,address,address)",
            "function FEE_BPS() returns (uint256)",
            "function ARBITER_ROLE() returns (bytes32)",
            "function openStream(address,uint256,uint256) returns (uint256)",
            "function streamed(uint256) returns (uint256)",
            "function withdrawable(uint256) returns (uint256)",
            "function withdraw(uint256)",
            "function topUp(uint256,uint256)",
            "function close(uint256)",
            "function openMilestones(address,uint256[]) returns (uint256)",
            "function release(uint256,uint256)",
            "function payBatch(bytes32,address[],uint256[])",
            "function streamOf(uint256) returns (address,address,uint256,uint256,uint64,uint256,bool)",
            "event StreamOpened(uint256 indexed,address indexed,address indexed,uint256,uint256,uint64)",
            "event Withdrawn(uint256 indexed,address indexed,uint256,uint256)",
            "event ToppedUp(uint256 indexed,uint256,uint256)",
            "event Closed(uint256 indexed,uint256,uint256,uint256)",
            "event MilestonesOpened(uint256 indexed,address indexed,address indexed,uint256,uint256)",
            "event Released(uint256 indexed,uint256,uint256,uint256)",
            "event Paid(bytes32 indexed,address indexed,uint256)",
            "event BatchPaid(bytes32 indexed,uint256,uint256)",
            "error BatchAlreadyPaid(bytes32)",
        ],
    ),
];

#[test]
fn committed_abis_have_the_shape_and_the_agreed_signatures() {
    let dir = workspace_root().join("contracts/abi");
    assert_eq!(EXPECTED.iter().map(|(name, _)| *name).collect::<Vec<_>>(), CONTRACTS);
    for (name, expected) in EXPECTED {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("committed");
        let file: Value = serde_json::from_str(&text).expect("JSON");
        // Already in the extracted form: re-extracting changes nothing.
        assert_eq!(abi_file(&file).expect("the committed shape"), text, "{name}.json is not in extracted form");
        let keys: Vec<&String> = file.as_object().expect("an object").keys().collect();
        assert_eq!(keys.len(), 3, "{name}.json has {keys:?}");
        let have: BTreeSet<String> = file["abi"].as_array().expect("abi").iter().map(signature).collect();
        let missing: Vec<&&str> = expected.iter().filter(|s| !have.contains(**s)).collect();
        assert!(missing.is_empty(), "{name}.json lacks {missing:#?}\nhas {have:#?}");
    }
}
