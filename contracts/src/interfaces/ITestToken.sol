// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC3009, IERC3009Cancel} from "@openzeppelin/contracts/interfaces/draft-IERC3009.sol";

/// @title The grid's test token: an ERC-20 with EIP-3009 transfers by signature and an open mint.
/// @notice LOCAL CHAINS ONLY. Anyone can mint any amount; never deploy this where value is real.
interface ITestToken is IERC20Metadata, IERC3009, IERC3009Cancel {
    /// @notice Creates `amount` units (6 decimals) for `to`. Open to everyone: local chains only.
    function mint(address to, uint256 amount) external;

    /// @notice The EIP-712 domain separator that `transferWithAuthorization` signatures are made over.
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
