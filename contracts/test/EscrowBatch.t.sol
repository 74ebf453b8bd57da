// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {IEscrow} from "../src/interfaces/IEscrow.sol";
import {EscrowBase} from "./EscrowBase.sol";

contract EscrowBatchTest is EscrowBase {
    bytes32 constant BATCH = keccak256("payouts 2026-12-06T12:00Z");

    function recipients(uint256 n) internal pure returns (address[] memory to, uint256[] memory amounts) {
        to = new address[](n);
        amounts = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            to[i] = actor(string.concat("operator ", Strings.toString(i)));
            amounts[i] = (i + 1) * 100_000 + i; // 100,000, 200,001, 300,002, ...
        }
    }

    function pay(bytes32 batchId, address[] memory to, uint256[] memory amounts) internal {
        vm.prank(payer);
        escrow.payBatch(batchId, to, amounts);
    }

    function test_payBatch_of_ten_pays_each_exactly_and_no_fee() public {
        (address[] memory to, uint256[] memory amounts) = recipients(10);
        uint256 total;
        for (uint256 i = 0; i < 10; ++i) {
            total += amounts[i];
            vm.expectEmit(address(escrow));
            emit IEscrow.Paid(BATCH, to[i], amounts[i]);
        }
        vm.expectEmit(address(escrow));
        emit IEscrow.BatchPaid(BATCH, 10, total);
        pay(BATCH, to, amounts);
        for (uint256 i = 0; i < 10; ++i) {
            assertEq(usdc.balanceOf(to[i]), amounts[i], "recipient");
        }
        assertEq(total, 5_500_045, "total");
        assertBalances(FUNDS - 5_500_045, 0, 0, 0); // straight from payer to recipients; no fee
        assertTrue(escrow.batchPaid(payer, BATCH), "marked paid");
    }

    function test_payBatch_replay_is_refused() public {
        (address[] memory to, uint256[] memory amounts) = recipients(3);
        pay(BATCH, to, amounts);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.BatchAlreadyPaid.selector, BATCH));
        pay(BATCH, to, amounts);
        // Another id pays again.
        pay(keccak256("next"), to, amounts);
        assertEq(usdc.balanceOf(to[2]), 2 * 300_002, "paid twice, by two batches");
        assertBalances(FUNDS - 2 * 600_003, 0, 0, 0);
    }

    /// Batch ids are per payer: a stranger cannot spend the grid's next id to block its payout.
    function test_payBatch_ids_are_per_payer() public {
        (address[] memory to, uint256[] memory amounts) = recipients(1);
        usdc.mint(stranger, 100_000);
        vm.startPrank(stranger);
        usdc.approve(address(escrow), 100_000);
        escrow.payBatch(BATCH, to, amounts);
        vm.stopPrank();
        assertTrue(!escrow.batchPaid(payer, BATCH), "not the payer's");
        pay(BATCH, to, amounts);
        assertEq(usdc.balanceOf(to[0]), 200_000, "both paid");
        assertBalances(FUNDS - 100_000, 0, 0, 0);
    }

    function test_payBatch_refuses_mismatched_empty_zero_and_unfunded_batches() public {
        (address[] memory to, uint256[] memory amounts) = recipients(3);
        uint256[] memory two = new uint256[](2);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.LengthMismatch.selector, 3, 2));
        pay(BATCH, to, two);
        vm.expectRevert(IEscrow.EmptyBatch.selector);
        pay(BATCH, new address[](0), new uint256[](0));
        vm.expectRevert(IEscrow.EmptyBatch.selector);
        pay(bytes32(0), to, amounts);

        address second = to[1];
        to[1] = address(0);
        vm.expectRevert(IEscrow.ZeroAddress.selector);
        pay(BATCH, to, amounts);
        to[1] = second;
        amounts[2] = 0;
        vm.expectRevert(IEscrow.ZeroAmount.selector);
        pay(BATCH, to, amounts);
        amounts[2] = 300_002;

        // The allowance covers the first payment but not the second.
        vm.prank(payer);
        usdc.approve(address(escrow), 300_000);
        vm.expectRevert(
            abi.encodeWithSignature(
                "ERC20InsufficientAllowance(address,uint256,uint256)", address(escrow), 200_000, 200_001
            )
        );
        pay(BATCH, to, amounts);
        // Every refusal rolled back whole: nobody was paid, and the id is still free.
        assertTrue(!escrow.batchPaid(payer, BATCH), "id still free");
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(usdc.balanceOf(to[i]), 0, "nobody paid");
        }
        vm.prank(payer);
        usdc.approve(address(escrow), type(uint256).max);
        pay(BATCH, to, amounts);
        assertBalances(FUNDS - 600_003, 0, 0, 0);
    }
}
