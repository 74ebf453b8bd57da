// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IProviderRegistry} from "../src/interfaces/IProviderRegistry.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";
import {TestToken} from "../src/TestToken.sol";
import {Base} from "./Base.sol";

contract ProviderRegistryTest is Base {
    TestToken sgl;
    ProviderRegistry registry;
    uint256 constant MIN_BOND = 100 * USDC;
    uint256 constant DELAY = 7 days;
    bytes32 constant META = keccak256("{\"node\":\"n1\",\"region\":\"eu\"}");
    bytes32 constant EVIDENCE = keccak256("forged result of job 7");

    function setUp() public {
        vm.warp(T0);
        sgl = new TestToken("SGL Stake", "SGL");
        registry = new ProviderRegistry(sgl, MIN_BOND, admin, treasury);
        sgl.mint(provider, 1_000 * USDC);
        vm.prank(provider);
        sgl.approve(address(registry), type(uint256).max);
    }

    function register(uint256 bond) internal {
        vm.prank(provider);
        registry.register(bond, META);
    }

    function assertProvider(bool registered, uint256 bond, bytes32 meta, uint256 unlockAt, uint256 reputation)
        internal
        view
    {
        (bool r, uint256 b, bytes32 m, uint64 u, uint32 rep) = registry.providerOf(provider);
        assertTrue(r == registered, registered ? "should be registered" : "should not be registered");
        assertEq(b, bond, "bond");
        assertEq(m, meta, "metadata hash");
        assertEq(u, unlockAt, "unlockAt");
        assertEq(rep, reputation, "reputation");
    }

    function assertBalances(uint256 prov, uint256 held, uint256 treasured) internal view {
        assertEq(sgl.balanceOf(provider), prov, "provider balance");
        assertEq(sgl.balanceOf(address(registry)), held, "registry balance");
        assertEq(sgl.balanceOf(treasury), treasured, "treasury balance");
    }

    function notRegistered(address who) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IProviderRegistry.NotRegistered.selector, who);
    }

    // ---- deployment ----

    function test_constructor_sets_everything_and_the_admin_roles() public view {
        assertEq(registry.token(), address(sgl), "token");
        assertEq(registry.treasury(), treasury, "treasury");
        assertEq(registry.minBond(), MIN_BOND, "minBond");
        assertEq(registry.DEREGISTER_DELAY(), 7 days, "delay");
        assertEq(registry.SLASHER_ROLE(), keccak256("SLASHER_ROLE"), "slasher role");
        assertEq(registry.VERIFIER_ROLE(), keccak256("VERIFIER_ROLE"), "verifier role");
        assertTrue(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), admin), "admin");
        assertTrue(registry.hasRole(registry.SLASHER_ROLE(), admin), "admin slashes");
        assertTrue(registry.hasRole(registry.VERIFIER_ROLE(), admin), "admin verifies");
        assertProvider(false, 0, 0, 0, 0);
    }

    function test_constructor_refuses_zero_addresses() public {
        vm.expectRevert(IProviderRegistry.ZeroAddress.selector);
        new ProviderRegistry(IERC20(address(0)), MIN_BOND, admin, treasury);
        vm.expectRevert(IProviderRegistry.ZeroAddress.selector);
        new ProviderRegistry(sgl, MIN_BOND, address(0), treasury);
        vm.expectRevert(IProviderRegistry.ZeroAddress.selector);
        new ProviderRegistry(sgl, MIN_BOND, admin, address(0));
    }

    // ---- register and top up ----

    function test_register_takes_the_bond() public {
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Registered(provider, 150 * USDC, META);
        register(150 * USDC);
        assertProvider(true, 150 * USDC, META, 0, 0);
        assertBalances(850 * USDC, 150 * USDC, 0);
    }

    function test_register_at_exactly_the_minimum_bond() public {
        register(MIN_BOND);
        assertProvider(true, MIN_BOND, META, 0, 0);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    function test_register_refuses_a_small_bond_zero_and_a_second_registration() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.BondTooSmall.selector, MIN_BOND - 1, MIN_BOND));
        register(MIN_BOND - 1);
        vm.expectRevert(IProviderRegistry.ZeroAmount.selector);
        register(0);
        register(MIN_BOND);
        vm.expectRevert(IProviderRegistry.AlreadyRegistered.selector);
        register(MIN_BOND);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    function test_register_without_allowance_is_refused() public {
        vm.prank(provider);
        sgl.approve(address(registry), 0);
        vm.expectRevert(
            abi.encodeWithSignature(
                "ERC20InsufficientAllowance(address,uint256,uint256)", address(registry), 0, MIN_BOND
            )
        );
        register(MIN_BOND);
        assertProvider(false, 0, 0, 0, 0);
    }

    function test_topUp_adds_to_the_bond() public {
        register(MIN_BOND);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.BondToppedUp(provider, 25 * USDC, 125 * USDC);
        vm.prank(provider);
        registry.topUp(25 * USDC);
        assertProvider(true, 125 * USDC, META, 0, 0);
        assertBalances(875 * USDC, 125 * USDC, 0);
    }

    function test_topUp_refuses_zero_strangers_and_leaving_providers() public {
        vm.expectRevert(notRegistered(provider));
        vm.prank(provider);
        registry.topUp(1);
        register(MIN_BOND);
        vm.expectRevert(IProviderRegistry.ZeroAmount.selector);
        vm.prank(provider);
        registry.topUp(0);
        vm.prank(provider);
        registry.requestDeregister();
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.DeregisterPending.selector, uint64(T0 + DELAY)));
        vm.prank(provider);
        registry.topUp(1);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    // ---- leaving ----

    function test_withdrawBond_reverts_one_second_before_seven_days_and_pays_at_seven_days() public {
        register(150 * USDC);
        vm.prank(admin);
        registry.setReputation(provider, 870);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.DeregisterRequested(provider, uint64(T0 + DELAY));
        vm.prank(provider);
        registry.requestDeregister();
        assertProvider(true, 150 * USDC, META, T0 + DELAY, 870);

        vm.warp(T0 + DELAY - 1);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.StillLocked.selector, uint64(T0 + DELAY)));
        vm.prank(provider);
        registry.withdrawBond();
        assertBalances(850 * USDC, 150 * USDC, 0);

        vm.warp(T0 + DELAY);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Deregistered(provider, 150 * USDC);
        vm.prank(provider);
        registry.withdrawBond();
        assertProvider(false, 0, 0, 0, 870); // the reputation stays with the address
        assertBalances(1_000 * USDC, 0, 0);
    }

    function test_requestDeregister_refuses_strangers_and_a_second_request() public {
        vm.expectRevert(notRegistered(provider));
        vm.prank(provider);
        registry.requestDeregister();
        register(MIN_BOND);
        vm.prank(provider);
        registry.requestDeregister();
        vm.warp(T0 + 1 days);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.DeregisterPending.selector, uint64(T0 + DELAY)));
        vm.prank(provider);
        registry.requestDeregister();
        assertProvider(true, MIN_BOND, META, T0 + DELAY, 0); // the delay was not restarted
    }

    function test_withdrawBond_refuses_without_a_request_or_registration() public {
        vm.expectRevert(notRegistered(provider));
        vm.prank(provider);
        registry.withdrawBond();
        register(MIN_BOND);
        vm.warp(T0 + 30 days);
        vm.expectRevert(IProviderRegistry.NoDeregisterRequest.selector);
        vm.prank(provider);
        registry.withdrawBond();
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    function test_a_provider_that_left_can_register_again() public {
        register(MIN_BOND);
        vm.prank(provider);
        registry.requestDeregister();
        vm.warp(T0 + DELAY);
        vm.prank(provider);
        registry.withdrawBond();
        bytes32 meta2 = keccak256("new metadata");
        vm.prank(provider);
        registry.register(200 * USDC, meta2);
        assertProvider(true, 200 * USDC, meta2, 0, 0);
        assertBalances(800 * USDC, 200 * USDC, 0);
    }

    // ---- slash ----

    function test_slash_sends_the_bond_to_the_treasury_with_the_evidence() public {
        register(150 * USDC);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.BondSlashed(provider, 60 * USDC, EVIDENCE);
        vm.prank(admin);
        registry.slash(provider, 60 * USDC, EVIDENCE);
        // Below the minimum now: still registered; whether it is admitted is the grid's call.
        assertProvider(true, 90 * USDC, META, 0, 0);
        assertBalances(850 * USDC, 90 * USDC, 60 * USDC);
    }

    function test_slash_during_the_deregistration_delay_then_withdraw_the_rest() public {
        register(150 * USDC);
        vm.prank(provider);
        registry.requestDeregister();
        vm.warp(T0 + DELAY - 1);
        vm.prank(admin);
        registry.slash(provider, 100 * USDC, EVIDENCE);
        vm.warp(T0 + DELAY);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Deregistered(provider, 50 * USDC);
        vm.prank(provider);
        registry.withdrawBond();
        assertBalances(900 * USDC, 0, 100 * USDC);
    }

    function test_slash_is_capped_and_an_emptied_bond_still_deregisters() public {
        register(150 * USDC);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.BondSlashed(provider, 150 * USDC, EVIDENCE);
        vm.prank(admin);
        registry.slash(provider, 10_000 * USDC, EVIDENCE);
        assertProvider(true, 0, META, 0, 0);
        assertBalances(850 * USDC, 0, 150 * USDC);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.NothingToSlash.selector, provider));
        vm.prank(admin);
        registry.slash(provider, 1, EVIDENCE);

        vm.prank(provider);
        registry.requestDeregister();
        vm.warp(T0 + DELAY);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Deregistered(provider, 0);
        vm.prank(provider);
        registry.withdrawBond();
        assertProvider(false, 0, 0, 0, 0);
        assertBalances(850 * USDC, 0, 150 * USDC);
    }

    function test_a_non_slasher_cannot_slash() public {
        register(MIN_BOND);
        bytes32 role = registry.SLASHER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        vm.prank(stranger);
        registry.slash(provider, 1, EVIDENCE);
        // The verifier role is not enough either.
        address verifier = actor("verifier");
        bytes32 verifierRole = registry.VERIFIER_ROLE();
        vm.prank(admin);
        registry.grantRole(verifierRole, verifier);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, verifier, role)
        );
        vm.prank(verifier);
        registry.slash(provider, 1, EVIDENCE);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    function test_slash_refuses_no_evidence_zero_and_unregistered() public {
        register(MIN_BOND);
        vm.expectRevert(IProviderRegistry.NoEvidence.selector);
        vm.prank(admin);
        registry.slash(provider, 1, bytes32(0));
        vm.expectRevert(IProviderRegistry.ZeroAmount.selector);
        vm.prank(admin);
        registry.slash(provider, 0, EVIDENCE);
        vm.expectRevert(notRegistered(stranger));
        vm.prank(admin);
        registry.slash(stranger, 1, EVIDENCE);
        assertBalances(900 * USDC, 100 * USDC, 0);
    }

    // ---- reputation ----

    function test_setReputation_by_the_verifier() public {
        register(MIN_BOND);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ReputationSet(provider, 950);
        vm.prank(admin);
        registry.setReputation(provider, 950);
        vm.prank(admin);
        registry.setReputation(provider, type(uint32).max);
        assertProvider(true, MIN_BOND, META, 0, type(uint32).max);
        // A score may be set before a provider registers (or after it left).
        vm.prank(admin);
        registry.setReputation(stranger, 3);
        (,,,, uint32 rep) = registry.providerOf(stranger);
        assertEq(rep, 3, "stranger's reputation");
    }

    function test_setReputation_refuses_non_verifiers_and_the_zero_address() public {
        bytes32 role = registry.VERIFIER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, provider, role)
        );
        vm.prank(provider);
        registry.setReputation(provider, 1_000);
        vm.expectRevert(IProviderRegistry.ZeroAddress.selector);
        vm.prank(admin);
        registry.setReputation(address(0), 1);
        assertProvider(false, 0, 0, 0, 0);
    }
}
