// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

/// @title Providers registered with a bond, slashable on evidence, leaving after a delay.
/// @notice Amounts are token units (6 decimals). A provider registers with at least `minBond`;
/// `requestDeregister` starts `DEREGISTER_DELAY`, during which the provider stays registered and
/// its bond stays slashable; `withdrawBond` then pays the bond back and removes the registration.
/// The reputation score is the verifier's and outlives a registration.
interface IProviderRegistry {
    /// @notice `provider` registered with `bond` and its metadata's hash.
    event Registered(address indexed provider, uint256 bond, bytes32 metadataHash);
    /// @notice `provider` added `amount`; its bond is now `bond`.
    event BondToppedUp(address indexed provider, uint256 amount, uint256 bond);
    /// @notice `provider` asked to leave; its bond can be withdrawn from `unlockAt`.
    event DeregisterRequested(address indexed provider, uint64 unlockAt);
    /// @notice `provider` left and got `amount` (its whole remaining bond) back.
    event Deregistered(address indexed provider, uint256 amount);
    /// @notice `amount` of `provider`'s bond went to the treasury.
    event BondSlashed(address indexed provider, uint256 amount, bytes32 evidence);
    /// @notice The verifier set `provider`'s reputation to `score`.
    event ReputationSet(address indexed provider, uint32 score);

    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice An amount argument was zero.
    error ZeroAmount();
    /// @notice A bond of `bond` is below the minimum `minBond`.
    error BondTooSmall(uint256 bond, uint256 minBond);
    /// @notice The caller is registered already.
    error AlreadyRegistered();
    /// @notice `provider` is not registered.
    error NotRegistered(address provider);
    /// @notice The caller asked to leave already; its bond can be withdrawn from `unlockAt`.
    error DeregisterPending(uint64 unlockAt);
    /// @notice The caller has not asked to leave.
    error NoDeregisterRequest();
    /// @notice The bond unlocks at `unlockAt` (a Unix timestamp), not yet.
    error StillLocked(uint64 unlockAt);
    /// @notice A slash came without evidence (the zero hash).
    error NoEvidence();
    /// @notice `provider`'s bond is empty.
    error NothingToSlash(address provider);

    /// @notice Seconds between `requestDeregister` and the earliest `withdrawBond`: 7 days.
    function DEREGISTER_DELAY() external view returns (uint256);
    /// @notice The role allowed to `slash`.
    function SLASHER_ROLE() external view returns (bytes32);
    /// @notice The role allowed to `setReputation`.
    function VERIFIER_ROLE() external view returns (bytes32);
    /// @notice The bond token.
    function token() external view returns (address);
    /// @notice Where slashed bonds go.
    function treasury() external view returns (address);
    /// @notice The smallest bond `register` accepts.
    function minBond() external view returns (uint256);

    /// @notice Registers the caller with `bond` (at least `minBond`, approved to this contract).
    function register(uint256 bond, bytes32 metadataHash) external;
    /// @notice Adds `amount` to the caller's bond (not once it asked to leave).
    function topUp(uint256 amount) external;
    /// @notice Starts the caller's `DEREGISTER_DELAY`.
    function requestDeregister() external;
    /// @notice From `unlockAt` on, pays the caller its bond and removes its registration.
    function withdrawBond() external;
    /// @notice Sends up to `amount` of `provider`'s bond to the treasury (what is there when less).
    /// Only `SLASHER_ROLE`; `evidence` must not be zero. Works during the deregistration delay.
    function slash(address provider, uint256 amount, bytes32 evidence) external;
    /// @notice Sets `provider`'s reputation. Only `VERIFIER_ROLE`.
    function setReputation(address provider, uint32 score) external;
    /// @notice Everything about `provider`; `unlockAt` is 0 unless it asked to leave.
    function providerOf(address provider)
        external
        view
        returns (bool registered, uint256 bond, bytes32 metadataHash, uint64 unlockAt, uint32 reputation);
}
