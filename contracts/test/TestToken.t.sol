// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {ERC3009} from "@openzeppelin/contracts/token/ERC20/extensions/draft-ERC3009.sol";
import {IERC3009, IERC3009Cancel} from "@openzeppelin/contracts/interfaces/draft-IERC3009.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {TestToken} from "../src/TestToken.sol";
import {Base} from "./Base.sol";

contract TestTokenTest is Base {
    bytes32 constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 constant CANCEL_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    uint256 constant PAYER_KEY = 0xA11CE;
    TestToken usdc;
    address signer;

    struct Auth {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    function setUp() public {
        vm.warp(T0);
        usdc = new TestToken("USD Coin", "USDC");
        signer = vm.addr(PAYER_KEY);
        usdc.mint(signer, 5 * USDC);
    }

    function auth(uint256 value) internal returns (Auth memory a) {
        a = Auth(signer, provider, value, T0 - 1, T0 + 300, bytes32(vm.randomUint()));
    }

    function sign(bytes32 typehash, Auth memory a) internal returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash =
            keccak256(abi.encode(typehash, a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce));
        return vm.sign(PAYER_KEY, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
    }

    function transfer(Auth memory a, uint8 v, bytes32 r, bytes32 s) internal {
        usdc.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
    }

    function test_metadata_is_usdcs() public view {
        assertTrue(keccak256(bytes(usdc.name())) == keccak256("USD Coin"), "name");
        assertTrue(keccak256(bytes(usdc.symbol())) == keccak256("USDC"), "symbol");
        assertEq(usdc.decimals(), 6, "decimals");
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = usdc.eip712Domain();
        assertTrue(keccak256(bytes(name)) == keccak256("USD Coin"), "domain name");
        assertTrue(keccak256(bytes(version)) == keccak256("2"), "domain version");
        assertEq(chainId, block.chainid, "domain chain id");
        assertEq(verifying, address(usdc), "domain contract");
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("USD Coin"),
                keccak256("2"),
                block.chainid,
                address(usdc)
            )
        );
        assertEq(usdc.DOMAIN_SEPARATOR(), expected, "DOMAIN_SEPARATOR");
    }

    function test_stake_token_has_its_own_domain() public {
        TestToken sgl = new TestToken("SGL Stake", "SGL");
        assertTrue(keccak256(bytes(sgl.symbol())) == keccak256("SGL"), "symbol");
        assertEq(sgl.decimals(), 6, "decimals");
        assertTrue(sgl.DOMAIN_SEPARATOR() != usdc.DOMAIN_SEPARATOR(), "a USDC signature must not move SGL");
    }

    function test_mint_is_open_to_anyone() public {
        vm.prank(stranger);
        usdc.mint(stranger, 1_234_567);
        assertEq(usdc.balanceOf(stranger), 1_234_567, "stranger");
        assertEq(usdc.totalSupply(), 5 * USDC + 1_234_567, "supply");
    }

    function test_transferWithAuthorization_with_a_random_nonce_moves_exactly_the_value() public {
        Auth memory a = auth(1_500_000);
        (uint8 v, bytes32 r, bytes32 s) = sign(TRANSFER_TYPEHASH, a);
        assertTrue(!usdc.authorizationState(signer, a.nonce), "fresh nonce");
        vm.expectEmit(address(usdc));
        emit IERC3009.AuthorizationUsed(signer, a.nonce);
        vm.expectEmit(address(usdc));
        emit IERC20.Transfer(signer, provider, 1_500_000);
        vm.prank(stranger); // a facilitator submits; the signer pays no gas
        transfer(a, v, r, s);
        assertEq(usdc.balanceOf(signer), 3_500_000, "signer");
        assertEq(usdc.balanceOf(provider), 1_500_000, "recipient");
        assertEq(usdc.balanceOf(stranger), 0, "facilitator");
        assertTrue(usdc.authorizationState(signer, a.nonce), "nonce used");
    }

    function test_transferWithAuthorization_replay_is_refused() public {
        Auth memory a = auth(USDC);
        (uint8 v, bytes32 r, bytes32 s) = sign(TRANSFER_TYPEHASH, a);
        transfer(a, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC3009.ERC3009UsedAuthorization.selector, signer, a.nonce));
        transfer(a, v, r, s);
        assertEq(usdc.balanceOf(signer), 4 * USDC, "paid once");
        assertEq(usdc.balanceOf(provider), USDC, "received once");
    }

    function test_transferWithAuthorization_expired_is_refused() public {
        Auth memory a = auth(USDC);
        (uint8 v, bytes32 r, bytes32 s) = sign(TRANSFER_TYPEHASH, a);
        vm.warp(a.validBefore); // validBefore is exclusive
        vm.expectRevert(
            abi.encodeWithSelector(ERC3009.ERC3009InvalidAuthorizationTime.selector, a.validAfter, a.validBefore)
        );
        transfer(a, v, r, s);
        assertEq(usdc.balanceOf(signer), 5 * USDC, "nothing moved");
        assertTrue(!usdc.authorizationState(signer, a.nonce), "nonce still unused");
    }

    function test_transferWithAuthorization_not_yet_valid_is_refused() public {
        Auth memory a = auth(USDC);
        a.validAfter = T0; // validAfter is exclusive too
        (uint8 v, bytes32 r, bytes32 s) = sign(TRANSFER_TYPEHASH, a);
        vm.expectRevert(
            abi.encodeWithSelector(ERC3009.ERC3009InvalidAuthorizationTime.selector, a.validAfter, a.validBefore)
        );
        transfer(a, v, r, s);
        vm.warp(T0 + 1);
        transfer(a, v, r, s);
        assertEq(usdc.balanceOf(provider), USDC, "valid one second later");
    }

    function test_transferWithAuthorization_with_a_changed_value_is_refused() public {
        Auth memory a = auth(USDC);
        (uint8 v, bytes32 r, bytes32 s) = sign(TRANSFER_TYPEHASH, a);
        a.value = 2 * USDC;
        vm.expectRevert(ERC3009.ERC3009InvalidSignature.selector);
        transfer(a, v, r, s);
        assertEq(usdc.balanceOf(signer), 5 * USDC, "nothing moved");
    }

    function test_transferWithAuthorization_beyond_the_balance_is_refused() public {
        Auth memory a = auth(6 * USDC);
        (uint8 v, bytes32 r, bytes32 s) = sign(TRANSFER_TYPEHASH, a);
        vm.expectRevert(
            abi.encodeWithSignature("ERC20InsufficientBalance(address,uint256,uint256)", signer, 5 * USDC, 6 * USDC)
        );
        transfer(a, v, r, s);
        assertTrue(!usdc.authorizationState(signer, a.nonce), "nonce still unused");
    }

    function test_receiveWithAuthorization_only_by_the_recipient() public {
        Auth memory a = auth(USDC);
        (uint8 v, bytes32 r, bytes32 s) = sign(RECEIVE_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSignature("ERC20InvalidReceiver(address)", provider));
        vm.prank(stranger);
        usdc.receiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
        vm.prank(provider);
        usdc.receiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
        assertEq(usdc.balanceOf(provider), USDC, "recipient");
        assertEq(usdc.balanceOf(signer), 4 * USDC, "signer");
    }

    function test_cancelAuthorization_spends_the_nonce() public {
        Auth memory a = auth(USDC);
        (uint8 v, bytes32 r, bytes32 s) = sign(TRANSFER_TYPEHASH, a);
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01", usdc.DOMAIN_SEPARATOR(), keccak256(abi.encode(CANCEL_TYPEHASH, signer, a.nonce))
            )
        );
        (uint8 cv, bytes32 cr, bytes32 cs) = vm.sign(PAYER_KEY, digest);
        vm.expectEmit(address(usdc));
        emit IERC3009Cancel.AuthorizationCanceled(signer, a.nonce);
        usdc.cancelAuthorization(signer, a.nonce, cv, cr, cs);
        vm.expectRevert(abi.encodeWithSelector(ERC3009.ERC3009UsedAuthorization.selector, signer, a.nonce));
        transfer(a, v, r, s);
        assertEq(usdc.balanceOf(signer), 5 * USDC, "nothing moved");
    }
}
