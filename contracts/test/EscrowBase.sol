// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {Escrow} from "../src/Escrow.sol";
import {TestToken} from "../src/TestToken.sol";
import {Base} from "./Base.sol";

/// @dev A fresh escrow and USDC; the payer holds 1,000 USDC approved to the escrow.
abstract contract EscrowBase is Base {
    TestToken usdc;
    Escrow escrow;
    uint256 constant FUNDS = 1_000 * USDC;

    function setUp() public virtual {
        vm.warp(T0);
        usdc = new TestToken("USD Coin", "USDC");
        escrow = new Escrow(usdc, admin, treasury);
        usdc.mint(payer, FUNDS);
        vm.prank(payer);
        usdc.approve(address(escrow), type(uint256).max);
    }

    function assertBalances(uint256 pay, uint256 prov, uint256 held, uint256 fees) internal view {
        assertEq(usdc.balanceOf(payer), pay, "payer balance");
        assertEq(usdc.balanceOf(provider), prov, "provider balance");
        assertEq(usdc.balanceOf(address(escrow)), held, "escrow balance");
        assertEq(usdc.balanceOf(treasury), fees, "treasury balance");
    }

    function openStream(uint256 deposit, uint256 rate) internal returns (uint256 id) {
        vm.prank(payer);
        id = escrow.openStream(provider, deposit, rate);
    }

    function openMilestones(uint256 a, uint256 b, uint256 c) internal returns (uint256 id) {
        uint256[] memory amounts = new uint256[](3);
        (amounts[0], amounts[1], amounts[2]) = (a, b, c);
        vm.prank(payer);
        id = escrow.openMilestones(provider, amounts);
    }

    function err(bytes4 selector, uint256 id) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector, id);
    }
}
