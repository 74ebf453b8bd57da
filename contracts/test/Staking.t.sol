// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IStaking} from "../src/interfaces/IStaking.sol";
import {Staking} from "../src/Staking.sol";
import {TestToken} from "../src/TestToken.sol";
import {Base} from "./Base.sol";

contract StakingTest is Base {
    TestToken sgl;
    Staking staking;
    address operator = actor("operator");
    bytes32 constant EVIDENCE = keccak256("canary 42 answered wrong");
    uint256 constant DELAY = 7 days;

    function setUp() public {
        vm.warp(T0);
        sgl = new TestToken("SGL Stake", "SGL");
        staking = new Staking(sgl, admin, treasury);
        sgl.mint(operator, 1_000 * USDC);
        vm.prank(operator);
        sgl.approve(address(staking), type(uint256).max);
    }

    function stake(uint256 amount) internal {
        vm.prank(operator);
        staking.stake(amount);
    }

    function unstake(uint256 amount) internal {
        vm.prank(operator);
        staking.requestUnstake(amount);
    }

    function assertStake(uint256 active, uint256 pending, uint256 unlockAt) internal view {
        (uint256 a, uint256 p, uint64 u) = staking.stakeOf(operator);
        assertEq(a, active, "active");
        assertEq(p, pending, "pending");
        assertEq(u, unlockAt, "unlockAt");
    }

    function assertBalances(uint256 op, uint256 held, uint256 treasured) internal view {
        assertEq(sgl.balanceOf(operator), op, "operator balance");
        assertEq(sgl.balanceOf(address(staking)), held, "staking balance");
        assertEq(sgl.balanceOf(treasury), treasured, "treasury balance");
    }

    // ---- deployment ----

    function test_constructor_sets_token_treasury_and_roles() public view {
        assertEq(staking.token(), address(sgl), "token");
        assertEq(staking.treasury(), treasury, "treasury");
        assertEq(staking.UNSTAKE_DELAY(), 7 days, "delay");
        assertEq(staking.SLASHER_ROLE(), keccak256("SLASHER_ROLE"), "slasher role");
        assertTrue(staking.hasRole(staking.DEFAULT_ADMIN_ROLE(), admin), "admin is admin");
        assertTrue(staking.hasRole(staking.SLASHER_ROLE(), admin), "admin can slash");
        assertTrue(!staking.hasRole(staking.SLASHER_ROLE(), operator), "operator cannot");
    }

    function test_constructor_refuses_zero_addresses() public {
        vm.expectRevert(IStaking.ZeroAddress.selector);
        new Staking(IERC20(address(0)), admin, treasury);
        vm.expectRevert(IStaking.ZeroAddress.selector);
        new Staking(sgl, address(0), treasury);
        vm.expectRevert(IStaking.ZeroAddress.selector);
        new Staking(sgl, admin, address(0));
    }

    // ---- stake ----

    function test_stake_takes_the_tokens_and_adds_up() public {
        vm.expectEmit(address(staking));
        emit IStaking.Staked(operator, 100 * USDC, 100 * USDC);
        stake(100 * USDC);
        vm.expectEmit(address(staking));
        emit IStaking.Staked(operator, 50 * USDC, 150 * USDC);
        stake(50 * USDC);
        assertStake(150 * USDC, 0, 0);
        assertBalances(850 * USDC, 150 * USDC, 0);
    }

    function test_stake_zero_is_refused() public {
        vm.expectRevert(IStaking.ZeroAmount.selector);
        stake(0);
    }

    function test_stake_without_allowance_is_refused() public {
        vm.prank(operator);
        sgl.approve(address(staking), 10);
        vm.expectRevert(
            abi.encodeWithSignature("ERC20InsufficientAllowance(address,uint256,uint256)", address(staking), 10, 11)
        );
        stake(11);
        assertBalances(1_000 * USDC, 0, 0);
    }

    // ---- unstake and withdraw ----

    function test_requestUnstake_moves_active_to_pending_for_seven_days() public {
        stake(100 * USDC);
        vm.expectEmit(address(staking));
        emit IStaking.UnstakeRequested(operator, 40 * USDC, 40 * USDC, uint64(T0 + DELAY));
        unstake(40 * USDC);
        assertStake(60 * USDC, 40 * USDC, T0 + DELAY);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    function test_requestUnstake_refuses_zero_and_more_than_active() public {
        stake(100 * USDC);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        unstake(0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientStake.selector, 100 * USDC, 100 * USDC + 1));
        unstake(100 * USDC + 1);
        unstake(30 * USDC);
        // Pending stake does not count as active a second time.
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientStake.selector, 70 * USDC, 71 * USDC));
        unstake(71 * USDC);
    }

    function test_withdraw_reverts_one_second_before_seven_days_and_pays_at_seven_days() public {
        stake(100 * USDC);
        unstake(100 * USDC);
        vm.warp(T0 + DELAY - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StillLocked.selector, uint64(T0 + DELAY)));
        vm.prank(operator);
        staking.withdraw();
        assertBalances(900 * USDC, 100 * USDC, 0);

        vm.warp(T0 + DELAY);
        vm.expectEmit(address(staking));
        emit IStaking.Withdrawn(operator, 100 * USDC);
        vm.prank(operator);
        staking.withdraw();
        assertStake(0, 0, 0);
        assertBalances(1_000 * USDC, 0, 0);
    }

    function test_a_second_request_adds_to_pending_and_restarts_the_delay() public {
        stake(100 * USDC);
        unstake(30 * USDC);
        vm.warp(T0 + 3 days);
        vm.expectEmit(address(staking));
        emit IStaking.UnstakeRequested(operator, 20 * USDC, 50 * USDC, uint64(T0 + 3 days + DELAY));
        unstake(20 * USDC);
        assertStake(50 * USDC, 50 * USDC, T0 + 3 days + DELAY);

        vm.warp(T0 + DELAY); // the first request's unlock time no longer counts
        vm.expectRevert(abi.encodeWithSelector(IStaking.StillLocked.selector, uint64(T0 + 3 days + DELAY)));
        vm.prank(operator);
        staking.withdraw();

        vm.warp(T0 + 3 days + DELAY);
        vm.prank(operator);
        staking.withdraw();
        assertStake(50 * USDC, 0, 0);
        assertBalances(950 * USDC, 50 * USDC, 0);
    }

    function test_withdraw_with_nothing_pending_is_refused() public {
        vm.expectRevert(IStaking.NothingPending.selector);
        vm.prank(operator);
        staking.withdraw();
        stake(100 * USDC);
        unstake(100 * USDC);
        vm.warp(T0 + DELAY);
        vm.prank(operator);
        staking.withdraw();
        vm.expectRevert(IStaking.NothingPending.selector);
        vm.prank(operator);
        staking.withdraw();
        assertBalances(1_000 * USDC, 0, 0);
    }

    function test_active_stake_is_not_withdrawable() public {
        stake(100 * USDC);
        vm.warp(T0 + 365 days);
        vm.expectRevert(IStaking.NothingPending.selector);
        vm.prank(operator);
        staking.withdraw();
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    // ---- slash ----

    function test_slash_takes_active_stake_to_the_treasury() public {
        stake(100 * USDC);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(operator, 25 * USDC, EVIDENCE);
        vm.prank(admin);
        staking.slash(operator, 25 * USDC, EVIDENCE);
        assertStake(75 * USDC, 0, 0);
        assertBalances(900 * USDC, 75 * USDC, 25 * USDC);
    }

    function test_pending_stake_stays_slashable_during_the_delay() public {
        stake(100 * USDC);
        unstake(70 * USDC);
        vm.warp(T0 + DELAY - 1); // misconduct found on the last day
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(operator, 50 * USDC, EVIDENCE);
        vm.prank(admin);
        staking.slash(operator, 50 * USDC, EVIDENCE); // 30 from active, then 20 from pending
        assertStake(0, 50 * USDC, T0 + DELAY);
        assertBalances(900 * USDC, 50 * USDC, 50 * USDC);

        vm.warp(T0 + DELAY);
        vm.prank(operator);
        staking.withdraw();
        assertBalances(950 * USDC, 0, 50 * USDC);
    }

    function test_slash_of_only_pending_stake() public {
        stake(100 * USDC);
        unstake(100 * USDC);
        vm.prank(admin);
        staking.slash(operator, 40 * USDC, EVIDENCE);
        assertStake(0, 60 * USDC, T0 + DELAY);
        assertBalances(900 * USDC, 60 * USDC, 40 * USDC);
    }

    function test_slash_is_capped_at_what_is_there() public {
        stake(100 * USDC);
        unstake(10 * USDC);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(operator, 100 * USDC, EVIDENCE);
        vm.prank(admin);
        staking.slash(operator, 1_000 * USDC, EVIDENCE);
        assertStake(0, 0, 0); // nothing pending: no unlock time left behind
        assertBalances(900 * USDC, 0, 100 * USDC);

        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToSlash.selector, operator));
        vm.prank(admin);
        staking.slash(operator, 1, EVIDENCE);
        vm.warp(T0 + DELAY);
        vm.expectRevert(IStaking.NothingPending.selector);
        vm.prank(operator);
        staking.withdraw();
    }

    function test_a_non_slasher_cannot_slash() public {
        stake(100 * USDC);
        bytes32 role = staking.SLASHER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        vm.prank(stranger);
        staking.slash(operator, 1, EVIDENCE);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, operator, role)
        );
        vm.prank(operator);
        staking.slash(operator, 1, EVIDENCE);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    function test_slash_without_evidence_or_amount_is_refused() public {
        stake(100 * USDC);
        vm.expectRevert(IStaking.NoEvidence.selector);
        vm.prank(admin);
        staking.slash(operator, 1, bytes32(0));
        vm.expectRevert(IStaking.ZeroAmount.selector);
        vm.prank(admin);
        staking.slash(operator, 0, EVIDENCE);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToSlash.selector, stranger));
        vm.prank(admin);
        staking.slash(stranger, 1, EVIDENCE);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    function test_the_admin_grants_and_revokes_slashers() public {
        stake(100 * USDC);
        address grid = actor("grid signer");
        bytes32 role = staking.SLASHER_ROLE();
        vm.startPrank(admin);
        staking.grantRole(role, grid);
        vm.stopPrank();
        vm.prank(grid);
        staking.slash(operator, 1 * USDC, EVIDENCE);
        vm.prank(admin);
        staking.revokeRole(role, grid);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, grid, role));
        vm.prank(grid);
        staking.slash(operator, 1 * USDC, EVIDENCE);
        assertBalances(900 * USDC, 99 * USDC, 1 * USDC);
    }

    /// Whatever the order of stakes, requests and slashes, every token is either with the
    /// operator, held, or in the treasury, and what is held is exactly active + pending.
    function testFuzz_stake_is_conserved(uint256 staked, uint256 unstaked, uint256 slashed, uint256 wait) public {
        staked = clamp(staked, 1, 1_000 * USDC);
        unstaked = clamp(unstaked, 1, staked);
        slashed = clamp(slashed, 1, 2_000 * USDC);
        wait = clamp(wait, 0, 2 * DELAY);
        stake(staked);
        unstake(unstaked);
        vm.warp(T0 + wait);
        vm.prank(admin);
        staking.slash(operator, slashed, EVIDENCE);
        (uint256 active, uint256 pending,) = staking.stakeOf(operator);
        uint256 taken = slashed < staked ? slashed : staked;
        assertEq(active + pending, staked - taken, "left after the slash");
        assertBalances(1_000 * USDC - staked, active + pending, taken);
        if (pending > 0 && wait >= DELAY) {
            vm.prank(operator);
            staking.withdraw();
            assertBalances(1_000 * USDC - staked + pending, active, taken);
        }
    }
}
