// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {Escrow} from "../src/Escrow.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";
import {Staking} from "../src/Staking.sol";
import {Base} from "./Base.sol";

/// @dev A token that, once armed, calls back into a contract in the middle of its next transfer:
/// what a hostile token (or an ERC-777-style hook) would do.
contract HookToken is ERC20 {
    address target;
    bytes data;

    constructor() ERC20("Hook", "HOOK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target_, bytes calldata data_) external {
        (target, data) = (target_, data_);
    }

    function _update(address from, address to, uint256 value) internal override {
        address t = target;
        if (t != address(0)) {
            target = address(0);
            (bool ok, bytes memory reason) = t.call(data);
            if (!ok) {
                assembly {
                    revert(add(reason, 32), mload(reason))
                }
            }
        }
        super._update(from, to, value);
    }
}

contract ReentrancyTest is Base {
    HookToken token;
    Escrow escrow;
    Staking staking;
    ProviderRegistry registry;
    bytes4 constant REENTERED = ReentrancyGuard.ReentrancyGuardReentrantCall.selector;

    function setUp() public {
        vm.warp(T0);
        token = new HookToken();
        escrow = new Escrow(token, admin, treasury);
        staking = new Staking(token, admin, treasury);
        registry = new ProviderRegistry(token, 1, admin, treasury);
        token.mint(payer, 1_000 * USDC);
        vm.startPrank(payer);
        token.approve(address(escrow), type(uint256).max);
        token.approve(address(staking), type(uint256).max);
        token.approve(address(registry), type(uint256).max);
        vm.stopPrank();
    }

    function stream() internal returns (uint256 id) {
        vm.prank(payer);
        id = escrow.openStream(provider, 100 * USDC, USDC);
        vm.warp(T0 + 10);
    }

    function test_escrow_withdraw_cannot_be_reentered() public {
        uint256 id = stream();
        token.arm(address(escrow), abi.encodeCall(Escrow.withdraw, (id)));
        vm.expectRevert(REENTERED);
        escrow.withdraw(id);
        // Unarmed (the failed call rolled the disarming back, so disarm by hand), it pays once.
        token.arm(address(0), "");
        escrow.withdraw(id);
        assertEq(token.balanceOf(provider), 9_900_000, "provider");
        assertEq(token.balanceOf(treasury), 100_000, "treasury");
    }

    function test_escrow_close_cannot_reenter_withdraw() public {
        uint256 id = stream();
        token.arm(address(escrow), abi.encodeCall(Escrow.withdraw, (id)));
        vm.expectRevert(REENTERED);
        vm.prank(payer);
        escrow.close(id);
        assertEq(token.balanceOf(address(escrow)), 100 * USDC, "nothing left");
    }

    function test_escrow_release_cannot_be_reentered() public {
        uint256[] memory amounts = new uint256[](2);
        (amounts[0], amounts[1]) = (USDC, USDC);
        vm.prank(payer);
        uint256 id = escrow.openMilestones(provider, amounts);
        token.arm(address(escrow), abi.encodeCall(Escrow.release, (id, 1)));
        vm.expectRevert(REENTERED);
        vm.prank(payer);
        escrow.release(id, 0);
        assertEq(token.balanceOf(address(escrow)), 2 * USDC, "nothing left");
    }

    function test_escrow_payBatch_cannot_reenter() public {
        uint256 id = stream();
        address[] memory to = new address[](1);
        uint256[] memory amounts = new uint256[](1);
        (to[0], amounts[0]) = (provider, USDC);
        token.arm(address(escrow), abi.encodeCall(Escrow.withdraw, (id)));
        vm.expectRevert(REENTERED);
        vm.prank(payer);
        escrow.payBatch(keccak256("b"), to, amounts);
        assertEq(token.balanceOf(provider), 0, "nobody paid");
    }

    function test_staking_withdraw_cannot_be_reentered() public {
        vm.startPrank(payer);
        staking.stake(10 * USDC);
        staking.requestUnstake(10 * USDC);
        vm.stopPrank();
        vm.warp(T0 + 7 days);
        token.arm(address(staking), abi.encodeCall(Staking.withdraw, ()));
        vm.expectRevert(REENTERED);
        vm.prank(payer);
        staking.withdraw();
        assertEq(token.balanceOf(address(staking)), 10 * USDC, "still held");
    }

    function test_registry_withdrawBond_cannot_be_reentered() public {
        vm.startPrank(payer);
        registry.register(10 * USDC, bytes32(0));
        registry.requestDeregister();
        vm.stopPrank();
        vm.warp(T0 + 7 days);
        token.arm(address(registry), abi.encodeCall(ProviderRegistry.withdrawBond, ()));
        vm.expectRevert(REENTERED);
        vm.prank(payer);
        registry.withdrawBond();
        assertEq(token.balanceOf(address(registry)), 10 * USDC, "still held");
    }
}
