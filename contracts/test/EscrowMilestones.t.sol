// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {IEscrow} from "../src/interfaces/IEscrow.sol";
import {EscrowBase} from "./EscrowBase.sol";

contract EscrowMilestonesTest is EscrowBase {
    function release(address by, uint256 id, uint256 index) internal {
        vm.prank(by);
        escrow.release(id, index);
    }

    function assertMilestone(uint256 id, uint256 index, uint256 amount, bool released) internal view {
        (uint256 a, bool r) = escrow.milestoneOf(id, index);
        assertEq(a, amount, "milestone amount");
        assertTrue(r == released, released ? "should be released" : "should not be released");
    }

    function test_openMilestones_takes_the_sum() public {
        vm.expectEmit(address(escrow));
        emit IEscrow.MilestonesOpened(1, payer, provider, 6 * USDC, 3);
        uint256 id = openMilestones(USDC, 2 * USDC, 3 * USDC);
        assertEq(id, 1, "id");
        assertEq(escrow.milestoneCount(id), 3, "count");
        assertMilestone(id, 0, USDC, false);
        assertMilestone(id, 2, 3 * USDC, false);
        (address p, address prov, uint256 deposit, uint256 rate, uint64 start, uint256 withdrawn, bool closed) =
            escrow.streamOf(id);
        assertEq(p, payer, "payer");
        assertEq(prov, provider, "provider");
        assertEq(deposit, 6 * USDC, "deposit");
        assertEq(rate, 0, "a milestone escrow has no rate");
        assertEq(start, T0, "start");
        assertEq(withdrawn, 0, "released");
        assertTrue(!closed, "open");
        assertEq(escrow.streamed(id), 0, "nothing released");
        vm.warp(T0 + 1 days);
        assertEq(escrow.streamed(id), 0, "milestones do not stream");
        assertBalances(FUNDS - 6 * USDC, 0, 6 * USDC, 0);
    }

    function test_openMilestones_refuses_zero_provider_empty_and_zero_amounts() public {
        uint256[] memory none = new uint256[](0);
        uint256[] memory withZero = new uint256[](2);
        withZero[0] = USDC;
        vm.startPrank(payer);
        vm.expectRevert(IEscrow.ZeroAddress.selector);
        escrow.openMilestones(address(0), withZero);
        vm.expectRevert(IEscrow.NoMilestones.selector);
        escrow.openMilestones(provider, none);
        vm.expectRevert(IEscrow.ZeroAmount.selector);
        escrow.openMilestones(provider, withZero);
        vm.stopPrank();
        assertBalances(FUNDS, 0, 0, 0);
    }

    function test_release_by_the_payer_pays_the_milestone_less_one_percent() public {
        uint256 id = openMilestones(500_000, 2 * USDC, 3 * USDC);
        vm.expectEmit(address(escrow));
        emit IEscrow.Released(id, 0, 495_000, 5_000);
        release(payer, id, 0);
        assertMilestone(id, 0, 500_000, true);
        assertMilestone(id, 1, 2 * USDC, false);
        assertEq(escrow.streamed(id), 500_000, "released so far");
        assertEq(escrow.withdrawable(id), 0, "a release pays at once");
        assertBalances(FUNDS - 5_500_000, 495_000, 5 * USDC, 5_000);
    }

    function test_release_by_the_arbiter() public {
        uint256 id = openMilestones(USDC, 2 * USDC, 3 * USDC);
        vm.expectEmit(address(escrow));
        emit IEscrow.Released(id, 2, 2_970_000, 30_000);
        release(admin, id, 2);
        assertBalances(FUNDS - 6 * USDC, 2_970_000, 3 * USDC, 30_000);
    }

    function test_a_milestone_of_99_units_pays_99_and_no_fee() public {
        uint256 id = openMilestones(99, 100, 199);
        vm.expectEmit(address(escrow));
        emit IEscrow.Released(id, 0, 99, 0);
        release(payer, id, 0);
        vm.expectEmit(address(escrow));
        emit IEscrow.Released(id, 1, 99, 1);
        release(payer, id, 1);
        vm.expectEmit(address(escrow));
        emit IEscrow.Released(id, 2, 198, 1);
        release(payer, id, 2);
        assertBalances(FUNDS - 398, 396, 0, 2);
    }

    function test_a_double_release_reverts() public {
        uint256 id = openMilestones(USDC, 2 * USDC, 3 * USDC);
        release(payer, id, 1);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.AlreadyReleased.selector, id, 1));
        release(payer, id, 1);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.AlreadyReleased.selector, id, 1));
        release(admin, id, 1);
        assertBalances(FUNDS - 6 * USDC, 1_980_000, 4 * USDC, 20_000);
    }

    function test_release_refuses_the_provider_strangers_bad_indexes_and_streams() public {
        uint256 id = openMilestones(USDC, 2 * USDC, 3 * USDC);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.Unauthorized.selector, id, provider));
        release(provider, id, 0);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.Unauthorized.selector, id, stranger));
        release(stranger, id, 0);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.NoSuchMilestone.selector, id, 3));
        release(payer, id, 3);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.NoSuchMilestone.selector, id, 3));
        escrow.milestoneOf(id, 3);
        uint256 s = openStream(USDC, 1);
        vm.expectRevert(err(IEscrow.NotMilestones.selector, s));
        release(payer, s, 0);
        vm.expectRevert(err(IEscrow.UnknownEscrow.selector, 9));
        release(payer, 9, 0);
        assertBalances(FUNDS - 7 * USDC, 0, 7 * USDC, 0);
    }

    function test_close_refunds_the_unreleased_milestones() public {
        uint256 id = openMilestones(USDC, 2 * USDC, 3 * USDC);
        release(payer, id, 0);
        release(admin, id, 2);
        vm.expectEmit(address(escrow));
        emit IEscrow.Closed(id, 0, 0, 2 * USDC);
        vm.prank(provider); // the provider may give up the rest
        escrow.close(id);
        assertBalances(FUNDS - 4 * USDC, 3_960_000, 0, 40_000);
        (,,,,, uint256 withdrawn, bool closed) = escrow.streamOf(id);
        assertEq(withdrawn, 4 * USDC, "released");
        assertTrue(closed, "closed");
        vm.expectRevert(err(IEscrow.AlreadyClosed.selector, id));
        release(payer, id, 1);
        vm.expectRevert(err(IEscrow.AlreadyClosed.selector, id));
        vm.prank(payer);
        escrow.close(id);
        assertBalances(FUNDS - 4 * USDC, 3_960_000, 0, 40_000);
    }

    function test_close_after_every_release_refunds_nothing() public {
        uint256 id = openMilestones(USDC, 2 * USDC, 3 * USDC);
        release(payer, id, 0);
        release(payer, id, 1);
        release(payer, id, 2);
        vm.expectEmit(address(escrow));
        emit IEscrow.Closed(id, 0, 0, 0);
        vm.prank(payer);
        escrow.close(id);
        assertBalances(FUNDS - 6 * USDC, 5_940_000, 0, 60_000);
    }

    function test_close_by_a_stranger_is_refused() public {
        uint256 id = openMilestones(USDC, 2 * USDC, 3 * USDC);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.Unauthorized.selector, id, stranger));
        vm.prank(stranger);
        escrow.close(id);
        assertBalances(FUNDS - 6 * USDC, 0, 6 * USDC, 0);
    }

    /// Any subset of milestones released, then a close: provider + treasury + refund is the
    /// deposit, the escrow ends empty.
    function testFuzz_milestones_pay_out_exactly_their_deposit(uint256 a, uint256 b, uint256 c, uint8 mask) public {
        a = clamp(a, 1, 300 * USDC);
        b = clamp(b, 1, 300 * USDC);
        c = clamp(c, 1, 300 * USDC);
        uint256 id = openMilestones(a, b, c);
        uint256 released;
        uint256[3] memory amounts = [a, b, c];
        for (uint256 i = 0; i < 3; ++i) {
            if (mask & (1 << i) != 0) {
                release(admin, id, i);
                released += amounts[i];
            }
        }
        vm.prank(payer);
        escrow.close(id);
        uint256 fees = usdc.balanceOf(treasury);
        uint256 refund = usdc.balanceOf(payer) - (FUNDS - a - b - c);
        assertEq(usdc.balanceOf(provider) + fees, released, "paid what was released");
        assertEq(refund, a + b + c - released, "refunded the rest");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }
}
