// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Escrow} from "../src/Escrow.sol";
import {IEscrow} from "../src/interfaces/IEscrow.sol";
import {EscrowBase} from "./EscrowBase.sol";

contract EscrowStreamTest is EscrowBase {
    // ---- deployment ----

    function test_constructor_sets_token_treasury_fee_and_roles() public view {
        assertEq(escrow.token(), address(usdc), "token");
        assertEq(escrow.treasury(), treasury, "treasury");
        assertEq(escrow.FEE_BPS(), 100, "fee");
        assertEq(escrow.ARBITER_ROLE(), keccak256("ARBITER_ROLE"), "arbiter role");
        assertTrue(escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), admin), "admin");
        assertTrue(escrow.hasRole(escrow.ARBITER_ROLE(), admin), "admin arbitrates");
    }

    function test_constructor_refuses_zero_addresses() public {
        vm.expectRevert(IEscrow.ZeroAddress.selector);
        new Escrow(IERC20(address(0)), admin, treasury);
        vm.expectRevert(IEscrow.ZeroAddress.selector);
        new Escrow(usdc, address(0), treasury);
        vm.expectRevert(IEscrow.ZeroAddress.selector);
        new Escrow(usdc, admin, address(0));
    }

    function test_the_fee_rounds_down_to_the_unit() public view {
        assertEq(escrow.feeOf(1_000_000), 10_000, "1 USDC");
        assertEq(escrow.feeOf(99), 0, "99 units pay no fee");
        assertEq(escrow.feeOf(100), 1, "100 units");
        assertEq(escrow.feeOf(199), 1, "199 units");
        assertEq(escrow.feeOf(0), 0, "nothing");
    }

    // ---- open ----

    function test_openStream_takes_the_deposit() public {
        vm.expectEmit(address(escrow));
        emit IEscrow.StreamOpened(1, payer, provider, 3 * USDC, 1_000, uint64(T0));
        uint256 id = openStream(3 * USDC, 1_000);
        assertEq(id, 1, "first id");
        (address p, address prov, uint256 deposit, uint256 rate, uint64 start, uint256 withdrawn, bool closed) =
            escrow.streamOf(id);
        assertEq(p, payer, "payer");
        assertEq(prov, provider, "provider");
        assertEq(deposit, 3 * USDC, "deposit");
        assertEq(rate, 1_000, "rate");
        assertEq(start, T0, "start");
        assertEq(withdrawn, 0, "withdrawn");
        assertTrue(!closed, "open");
        assertEq(escrow.milestoneCount(id), 0, "a stream has no milestones");
        assertEq(openStream(USDC, 1), 2, "second id");
        assertBalances(FUNDS - 4 * USDC, 0, 4 * USDC, 0);
    }

    function test_openStream_refuses_zero_provider_deposit_rate_and_no_allowance() public {
        vm.startPrank(payer);
        vm.expectRevert(IEscrow.ZeroAddress.selector);
        escrow.openStream(address(0), USDC, 1);
        vm.expectRevert(IEscrow.ZeroAmount.selector);
        escrow.openStream(provider, 0, 1);
        vm.expectRevert(IEscrow.ZeroRate.selector);
        escrow.openStream(provider, USDC, 0);
        usdc.approve(address(escrow), USDC - 1);
        vm.expectRevert(
            abi.encodeWithSignature(
                "ERC20InsufficientAllowance(address,uint256,uint256)", address(escrow), USDC - 1, USDC
            )
        );
        escrow.openStream(provider, USDC, 1);
        vm.stopPrank();
        assertBalances(FUNDS, 0, 0, 0);
    }

    function test_views_of_an_unknown_escrow_revert() public {
        vm.expectRevert(err(IEscrow.UnknownEscrow.selector, 1));
        escrow.streamOf(1);
        vm.expectRevert(err(IEscrow.UnknownEscrow.selector, 0));
        escrow.streamed(0);
        vm.expectRevert(err(IEscrow.UnknownEscrow.selector, 7));
        escrow.withdraw(7);
        vm.expectRevert(err(IEscrow.UnknownEscrow.selector, 7));
        escrow.close(7);
        vm.expectRevert(err(IEscrow.UnknownEscrow.selector, 7));
        escrow.milestoneCount(7);
    }

    // ---- streaming ----

    function test_streamed_grows_by_the_rate_and_caps_at_the_deposit() public {
        uint256 id = openStream(USDC, 10_000); // 100 s of funding
        assertEq(escrow.streamed(id), 0, "at start");
        vm.warp(T0 + 1);
        assertEq(escrow.streamed(id), 10_000, "after 1 s");
        vm.warp(T0 + 99);
        assertEq(escrow.streamed(id), 990_000, "after 99 s");
        vm.warp(T0 + 100);
        assertEq(escrow.streamed(id), USDC, "after 100 s");
        vm.warp(T0 + 101);
        assertEq(escrow.streamed(id), USDC, "capped after 101 s");
        vm.warp(T0 + 3650 days);
        assertEq(escrow.streamed(id), USDC, "capped after ten years");
        assertEq(escrow.withdrawable(id), USDC, "withdrawable");
    }

    function test_a_huge_rate_caps_without_overflow() public {
        uint256 id = openStream(USDC, type(uint256).max);
        vm.warp(T0 + 2); // rate * 2 does not fit in 256 bits
        assertEq(escrow.streamed(id), USDC, "capped");
        escrow.withdraw(id);
        assertBalances(FUNDS - USDC, 990_000, 0, 10_000);
    }

    function test_a_rate_that_does_not_divide_the_deposit_caps_exactly() public {
        uint256 id = openStream(1_000, 3); // 333 s give 999, the 334th second the last 1
        vm.warp(T0 + 333);
        assertEq(escrow.streamed(id), 999, "333 s");
        vm.warp(T0 + 334);
        assertEq(escrow.streamed(id), 1_000, "334 s");
    }

    // ---- withdraw ----

    function test_withdraw_of_one_usdc_pays_990000_and_10000_to_the_unit() public {
        uint256 id = openStream(5 * USDC, 10_000);
        vm.warp(T0 + 100);
        vm.expectEmit(address(escrow));
        emit IEscrow.Withdrawn(id, provider, 990_000, 10_000);
        vm.prank(stranger); // anyone may trigger it; the money goes to the provider
        escrow.withdraw(id);
        assertBalances(FUNDS - 5 * USDC, 990_000, 4 * USDC, 10_000);
        assertEq(usdc.balanceOf(stranger), 0, "the caller gets nothing");
        (,,,,, uint256 withdrawn,) = escrow.streamOf(id);
        assertEq(withdrawn, USDC, "withdrawn counts the fee");
        assertEq(escrow.withdrawable(id), 0, "nothing left to withdraw");
    }

    /// 99 units carry a fee of 0.99 units, which rounds down to 0: the provider gets all 99.
    function test_withdraw_of_99_units_pays_99_and_no_fee() public {
        uint256 id = openStream(1_000, 99);
        vm.warp(T0 + 1);
        vm.expectEmit(address(escrow));
        emit IEscrow.Withdrawn(id, provider, 99, 0);
        escrow.withdraw(id);
        assertBalances(FUNDS - 1_000, 99, 901, 0);
        // The fee is per payout: another 99 units pay no fee either.
        vm.warp(T0 + 2);
        vm.expectEmit(address(escrow));
        emit IEscrow.Withdrawn(id, provider, 99, 0);
        escrow.withdraw(id);
        assertBalances(FUNDS - 1_000, 198, 802, 0);
        // 2 s at once: 198 units, a fee of 1.98 rounded down to 1.
        vm.warp(T0 + 4);
        vm.expectEmit(address(escrow));
        emit IEscrow.Withdrawn(id, provider, 197, 1);
        escrow.withdraw(id);
        assertBalances(FUNDS - 1_000, 395, 604, 1);
    }

    function test_withdrawals_in_steps_never_pay_more_than_the_deposit() public {
        uint256 id = openStream(USDC, 10_000);
        vm.warp(T0 + 30);
        escrow.withdraw(id); // 300,000: 297,000 + 3,000
        vm.warp(T0 + 30 days);
        escrow.withdraw(id); // the other 700,000: 693,000 + 7,000
        assertBalances(FUNDS - USDC, 990_000, 0, 10_000);
        vm.expectRevert(err(IEscrow.NothingToWithdraw.selector, id));
        escrow.withdraw(id);
    }

    function test_withdraw_with_nothing_streamed_is_refused() public {
        uint256 id = openStream(USDC, 10_000);
        vm.expectRevert(err(IEscrow.NothingToWithdraw.selector, id));
        escrow.withdraw(id);
        vm.warp(T0 + 5);
        escrow.withdraw(id);
        vm.expectRevert(err(IEscrow.NothingToWithdraw.selector, id)); // same second, again
        escrow.withdraw(id);
        assertBalances(FUNDS - USDC, 49_500, USDC - 50_000, 500);
    }

    function test_withdraw_of_a_milestone_escrow_is_refused() public {
        uint256 id = openMilestones(1, 2, 3);
        vm.expectRevert(err(IEscrow.NotAStream.selector, id));
        escrow.withdraw(id);
    }

    // ---- top up ----

    function test_topUp_extends_a_running_stream() public {
        uint256 id = openStream(1_000, 10); // runs dry at 100 s
        vm.warp(T0 + 50);
        vm.expectEmit(address(escrow));
        emit IEscrow.ToppedUp(id, 1_000, 2_000);
        vm.prank(payer);
        escrow.topUp(id, 1_000);
        vm.warp(T0 + 150);
        assertEq(escrow.streamed(id), 1_500, "still streaming after the old end");
        vm.warp(T0 + 500);
        assertEq(escrow.streamed(id), 2_000, "capped at the new deposit");
        assertBalances(FUNDS - 2_000, 0, 2_000, 0);
    }

    function test_topUp_refuses_others_zero_closed_depleted_and_milestones() public {
        uint256 id = openStream(1_000, 10);
        vm.expectRevert(err(IEscrow.NotPayer.selector, id));
        vm.prank(provider);
        escrow.topUp(id, 1);
        vm.expectRevert(IEscrow.ZeroAmount.selector);
        vm.prank(payer);
        escrow.topUp(id, 0);
        vm.warp(T0 + 100); // streamed == deposit: dry
        vm.expectRevert(err(IEscrow.StreamDepleted.selector, id));
        vm.prank(payer);
        escrow.topUp(id, 1);
        vm.prank(payer);
        escrow.close(id);
        vm.expectRevert(err(IEscrow.AlreadyClosed.selector, id));
        vm.prank(payer);
        escrow.topUp(id, 1);
        uint256 m = openMilestones(1, 2, 3);
        vm.expectRevert(err(IEscrow.NotAStream.selector, m));
        vm.prank(payer);
        escrow.topUp(m, 1);
        assertBalances(FUNDS - 1_000 - 6, 990, 6, 10);
    }

    // ---- close ----

    function test_close_by_the_payer_pays_what_streamed_and_refunds_the_rest() public {
        uint256 id = openStream(5 * USDC, 10_000);
        vm.warp(T0 + 250); // 2,500,000 streamed
        vm.expectEmit(address(escrow));
        emit IEscrow.Closed(id, 2_475_000, 25_000, 2_500_000);
        vm.prank(payer);
        escrow.close(id);
        assertBalances(FUNDS - 2_500_000, 2_475_000, 0, 25_000);
        (,,,,, uint256 withdrawn, bool closed) = escrow.streamOf(id);
        assertTrue(closed, "closed");
        assertEq(withdrawn, 2_500_000, "withdrawn");

        vm.warp(T0 + 10 days);
        assertEq(escrow.streamed(id), 2_500_000, "frozen at close");
        assertEq(escrow.withdrawable(id), 0, "nothing more");
        vm.expectRevert(err(IEscrow.NothingToWithdraw.selector, id));
        escrow.withdraw(id);
        vm.expectRevert(err(IEscrow.AlreadyClosed.selector, id));
        vm.prank(payer);
        escrow.close(id);
        assertBalances(FUNDS - 2_500_000, 2_475_000, 0, 25_000);
    }

    function test_close_after_a_withdrawal_pays_only_the_remainder() public {
        uint256 id = openStream(5 * USDC, 10_000);
        vm.warp(T0 + 100);
        escrow.withdraw(id); // 990,000 + 10,000
        vm.warp(T0 + 150);
        vm.expectEmit(address(escrow));
        emit IEscrow.Closed(id, 495_000, 5_000, 3_500_000);
        vm.prank(provider);
        escrow.close(id);
        assertBalances(FUNDS - 1_500_000, 1_485_000, 0, 15_000);
    }

    function test_close_at_the_start_refunds_everything() public {
        uint256 id = openStream(5 * USDC, 10_000);
        vm.expectEmit(address(escrow));
        emit IEscrow.Closed(id, 0, 0, 5 * USDC);
        vm.prank(payer);
        escrow.close(id);
        assertBalances(FUNDS, 0, 0, 0);
    }

    function test_close_of_a_dry_stream_refunds_nothing() public {
        uint256 id = openStream(USDC, 10_000);
        vm.warp(T0 + 1 days);
        vm.expectEmit(address(escrow));
        emit IEscrow.Closed(id, 990_000, 10_000, 0);
        vm.prank(admin); // the grid, as arbiter
        escrow.close(id);
        assertBalances(FUNDS - USDC, 990_000, 0, 10_000);
    }

    function test_close_by_a_stranger_is_refused() public {
        uint256 id = openStream(USDC, 10_000);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.Unauthorized.selector, id, stranger));
        vm.prank(stranger);
        escrow.close(id);
        // A granted arbiter may; a revoked one may not.
        address grid = actor("grid signer");
        bytes32 role = escrow.ARBITER_ROLE();
        vm.prank(admin);
        escrow.grantRole(role, grid);
        vm.prank(admin);
        escrow.revokeRole(role, grid);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.Unauthorized.selector, id, grid));
        vm.prank(grid);
        escrow.close(id);
        assertBalances(FUNDS - USDC, 0, USDC, 0);
    }

    /// Whatever the deposit, rate and times of a withdrawal and the close, the provider, the
    /// treasury and the payer's refund add up to the deposit exactly, the escrow ends empty, and
    /// the fee is never more than 1 %.
    function testFuzz_a_stream_pays_out_exactly_its_deposit(
        uint256 deposit,
        uint256 rate,
        uint256 withdrawAt,
        uint256 closeAfter
    ) public {
        deposit = clamp(deposit, 1, FUNDS);
        rate = clamp(rate, 1, deposit);
        withdrawAt = clamp(withdrawAt, 0, 2 * deposit / rate + 2);
        closeAfter = clamp(closeAfter, 0, 2 * deposit / rate + 2);
        uint256 id = openStream(deposit, rate);
        vm.warp(T0 + withdrawAt);
        if (escrow.withdrawable(id) > 0) escrow.withdraw(id);
        assertEq(usdc.balanceOf(address(escrow)), deposit - escrow.streamed(id), "held while open");
        vm.warp(T0 + withdrawAt + closeAfter);
        uint256 streamedAtClose = escrow.streamed(id);
        vm.prank(payer);
        escrow.close(id);
        uint256 toProvider = usdc.balanceOf(provider);
        uint256 fees = usdc.balanceOf(treasury);
        uint256 refund = usdc.balanceOf(payer) - (FUNDS - deposit);
        assertEq(toProvider + fees + refund, deposit, "everything accounted for");
        assertEq(toProvider + fees, streamedAtClose, "paid what streamed");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
        assertTrue(fees * 100 <= toProvider + fees, "fee at most 1 %");
    }
}
