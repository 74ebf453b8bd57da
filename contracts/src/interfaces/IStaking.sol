// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

/// @title Operator stake: staked, unstaked after a delay, slashable until it leaves.
/// @notice Amounts are token units (6 decimals). Each operator has one active balance and one
/// pending balance; pending stake is waiting out `UNSTAKE_DELAY` and stays slashable meanwhile.
/// An indexer rebuilds every balance from the events: `Staked` and `UnstakeRequested` carry the
/// new totals, and `Slashed` takes from active first, then from pending.
interface IStaking {
    /// @notice `operator` staked `amount`; its active stake is now `active`.
    event Staked(address indexed operator, uint256 amount, uint256 active);
    /// @notice `amount` moved from active to pending; pending is now `pending`, withdrawable from `unlockAt`.
    event UnstakeRequested(address indexed operator, uint256 amount, uint256 pending, uint64 unlockAt);
    /// @notice All pending stake (`amount`) went back to `operator`; its pending stake is now zero.
    event Withdrawn(address indexed operator, uint256 amount);
    /// @notice `amount` of `operator`'s stake (active first, then pending) went to the treasury.
    event Slashed(address indexed operator, uint256 amount, bytes32 evidence);

    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice An amount argument was zero.
    error ZeroAmount();
    /// @notice Asked to unstake `requested` with only `active` staked.
    error InsufficientStake(uint256 active, uint256 requested);
    /// @notice Nothing is pending for the caller.
    error NothingPending();
    /// @notice Pending stake unlocks at `unlockAt` (a Unix timestamp), not yet.
    error StillLocked(uint64 unlockAt);
    /// @notice A slash came without evidence (the zero hash).
    error NoEvidence();
    /// @notice `operator` has no stake, active or pending, to slash.
    error NothingToSlash(address operator);

    /// @notice Seconds between `requestUnstake` and the earliest `withdraw`: 7 days.
    function UNSTAKE_DELAY() external view returns (uint256);
    /// @notice The role allowed to `slash`.
    function SLASHER_ROLE() external view returns (bytes32);
    /// @notice The staked token.
    function token() external view returns (address);
    /// @notice Where slashed stake goes.
    function treasury() external view returns (address);

    /// @notice Stakes `amount` from the caller (who must have approved this contract).
    function stake(uint256 amount) external;
    /// @notice Moves `amount` of the caller's active stake to pending and (re)starts the delay:
    /// a second request adds to pending and pushes `unlockAt` to now + `UNSTAKE_DELAY`.
    function requestUnstake(uint256 amount) external;
    /// @notice Pays the caller all its pending stake, from `unlockAt` on.
    function withdraw() external;
    /// @notice Sends up to `amount` of `operator`'s stake to the treasury, active first, then pending.
    /// Takes what is there when that is less. Only `SLASHER_ROLE`; `evidence` must not be zero.
    function slash(address operator, uint256 amount, bytes32 evidence) external;
    /// @notice `operator`'s active and pending stake, and when the pending stake unlocks (0 when none is pending).
    function stakeOf(address operator) external view returns (uint256 active, uint256 pending, uint64 unlockAt);
}
