// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {Escrow} from "../src/Escrow.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";
import {Staking} from "../src/Staking.sol";
import {TestToken} from "../src/TestToken.sol";
import {Base} from "./Base.sol";

/// @dev One operation per test, each in the state the grid meets it in, so that
/// `forge test --match-contract GasTest --gas-report --isolate` reads as gas per operation
/// (`--isolate` runs each call as its own transaction: the 21,000 base and calldata included).
contract GasTest is Base {
    uint256 constant KEY = 0xA11CE;
    TestToken usdc;
    TestToken sgl;
    Staking staking;
    ProviderRegistry registry;
    Escrow escrow;
    address signer;
    uint256 streamId;
    uint256 milestonesId;
    address[] to;
    uint256[] amounts;

    function setUp() public {
        vm.warp(T0);
        usdc = new TestToken("USD Coin", "USDC");
        sgl = new TestToken("SGL Stake", "SGL");
        staking = new Staking(sgl, admin, treasury);
        registry = new ProviderRegistry(sgl, 100 * USDC, admin, treasury);
        escrow = new Escrow(usdc, admin, treasury);
        signer = vm.addr(KEY);
        usdc.mint(signer, 1_000 * USDC);
        usdc.mint(treasury, 1); // a treasury that has been paid before, as it will be
        sgl.mint(treasury, 1);
        usdc.mint(provider, 1); // so is the provider
        sgl.mint(provider, 1_000 * USDC);
        usdc.mint(payer, 1_000 * USDC);
        vm.startPrank(provider);
        sgl.approve(address(staking), type(uint256).max);
        sgl.approve(address(registry), type(uint256).max);
        staking.stake(100 * USDC);
        staking.requestUnstake(50 * USDC);
        vm.stopPrank();
        vm.startPrank(payer);
        usdc.approve(address(escrow), type(uint256).max);
        streamId = escrow.openStream(provider, 100 * USDC, 1_000);
        uint256[] memory m = new uint256[](3);
        (m[0], m[1], m[2]) = (USDC, 2 * USDC, 3 * USDC);
        milestonesId = escrow.openMilestones(provider, m);
        vm.stopPrank();
        for (uint256 i = 0; i < 10; ++i) {
            to.push(actor(string.concat("operator ", Strings.toString(i))));
            amounts.push(1_000_000 + i);
        }
        vm.warp(T0 + 1 hours);
    }

    function test_gas_stake() public {
        vm.prank(provider);
        staking.stake(10 * USDC);
    }

    function test_gas_requestUnstake() public {
        vm.prank(provider);
        staking.requestUnstake(10 * USDC);
    }

    function test_gas_withdraw_stake() public {
        vm.warp(T0 + 8 days);
        vm.prank(provider);
        staking.withdraw();
    }

    function test_gas_slash_stake() public {
        vm.prank(admin);
        staking.slash(provider, 60 * USDC, keccak256("evidence"));
    }

    function test_gas_register() public {
        vm.prank(provider);
        registry.register(100 * USDC, keccak256("metadata"));
    }

    function test_gas_slash_bond() public {
        vm.prank(provider);
        registry.register(100 * USDC, keccak256("metadata"));
        vm.prank(admin);
        registry.slash(provider, 10 * USDC, keccak256("evidence"));
    }

    function test_gas_openStream() public {
        vm.prank(payer);
        escrow.openStream(provider, 10 * USDC, 1_000);
    }

    function test_gas_withdraw_stream() public {
        escrow.withdraw(streamId);
    }

    function test_gas_close() public {
        vm.prank(payer);
        escrow.close(streamId);
    }

    function test_gas_openMilestones_of_three() public {
        uint256[] memory m = new uint256[](3);
        (m[0], m[1], m[2]) = (USDC, 2 * USDC, 3 * USDC);
        vm.prank(payer);
        escrow.openMilestones(provider, m);
    }

    function test_gas_release() public {
        vm.prank(admin);
        escrow.release(milestonesId, 1);
    }

    function test_gas_payBatch_of_ten() public {
        vm.prank(payer);
        escrow.payBatch(keccak256("batch"), to, amounts);
    }

    function test_gas_transferWithAuthorization() public {
        bytes32 nonce = keccak256("x402 nonce");
        uint256 validBefore = block.timestamp + 300;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
                ),
                signer,
                provider,
                USDC,
                0,
                validBefore,
                nonce
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(KEY, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
        usdc.transferWithAuthorization(signer, provider, USDC, 0, validBefore, nonce, v, r, s);
    }
}
