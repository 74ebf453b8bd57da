// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ERC3009} from "@openzeppelin/contracts/token/ERC20/extensions/draft-ERC3009.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {ITestToken} from "./interfaces/ITestToken.sol";

/// @title The grid's test token: a 6-decimal ERC-20 with EIP-3009 `transferWithAuthorization`.
/// @notice !!! LOCAL CHAINS ONLY: `mint` is open to everyone, so this token is worth nothing. !!!
/// The grid deploys it twice on its local chain: ("USD Coin", "USDC") for payments, so that the
/// stock x402 clients, which sign EIP-3009 authorizations over USDC's EIP-712 domain (name
/// "USD Coin", version "2"), pay with it; and ("SGL Stake", "SGL") for stake and bonds.
/// @dev OpenZeppelin's `ERC3009` keeps used nonces in a map, so the random 32-byte nonces x402
/// clients send work (`ERC20TransferAuthorization` treats them as sequences and refuses them).
contract TestToken is ERC3009, ITestToken {
    /// @param name_ The token's name, also its EIP-712 domain name.
    /// @param symbol_ The token's symbol.
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) EIP712(name_, "2") {}

    /// @notice 6, as USDC.
    function decimals() public pure override(ERC20, IERC20Metadata) returns (uint8) {
        return 6;
    }

    /// @inheritdoc ITestToken
    /// @dev !!! No access control on purpose: local chains and tests only. !!!
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @inheritdoc ITestToken
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }
}
