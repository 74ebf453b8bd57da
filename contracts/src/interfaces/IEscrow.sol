// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

/// @title Escrowed payments from requesters to providers: streams, milestones and batch payouts.
/// @notice Amounts are token units (6 decimals). Every payout to a provider from an escrow (a
/// stream withdrawal, a close, a milestone release) pays `FEE_BPS` (1 %, rounded down) of it to the
/// treasury; the events carry the provider's net amount and the fee separately, so an indexer
/// rebuilds every balance from them. Escrow ids start at 1 and are shared by streams and
/// milestone escrows; a milestone escrow is the one whose `ratePerSecond` is 0.
interface IEscrow {
    /// @notice Stream `id` opened: `payer` deposited `deposit`, paid to `provider` at `ratePerSecond` from `start`.
    event StreamOpened(
        uint256 indexed id,
        address indexed payer,
        address indexed provider,
        uint256 deposit,
        uint256 ratePerSecond,
        uint64 start
    );
    /// @notice `amount` went to `provider` from stream `id` and `fee` to the treasury.
    event Withdrawn(uint256 indexed id, address indexed provider, uint256 amount, uint256 fee);
    /// @notice The payer added `amount` to stream `id`, whose deposit is now `deposit`.
    event ToppedUp(uint256 indexed id, uint256 amount, uint256 deposit);
    /// @notice Escrow `id` closed: `paid` went to the provider, `fee` to the treasury and `refunded` to the payer.
    event Closed(uint256 indexed id, uint256 paid, uint256 fee, uint256 refunded);
    /// @notice Milestone escrow `id` opened: `payer` deposited `deposit` for `count` milestones to `provider`.
    event MilestonesOpened(
        uint256 indexed id, address indexed payer, address indexed provider, uint256 deposit, uint256 count
    );
    /// @notice Milestone `index` of escrow `id` was released: `amount` to the provider, `fee` to the treasury.
    event Released(uint256 indexed id, uint256 index, uint256 amount, uint256 fee);
    /// @notice `amount` went to `to` in batch `batchId` (no fee: payouts are already net).
    event Paid(bytes32 indexed batchId, address indexed to, uint256 amount);
    /// @notice Batch `batchId` paid `count` recipients `total` in all.
    event BatchPaid(bytes32 indexed batchId, uint256 count, uint256 total);

    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice An amount (a deposit, a top-up, a milestone, a batch payment) was zero.
    error ZeroAmount();
    /// @notice A stream's rate was zero.
    error ZeroRate();
    /// @notice No escrow has id `id`.
    error UnknownEscrow(uint256 id);
    /// @notice Only the escrow's payer may do this.
    error NotPayer(uint256 id);
    /// @notice The caller is not a party allowed to do this to escrow `id`.
    error Unauthorized(uint256 id, address caller);
    /// @notice Escrow `id` is closed.
    error AlreadyClosed(uint256 id);
    /// @notice Escrow `id` is a milestone escrow, not a stream.
    error NotAStream(uint256 id);
    /// @notice Escrow `id` is a stream, not a milestone escrow.
    error NotMilestones(uint256 id);
    /// @notice Stream `id` has streamed its whole deposit; open a new one instead of topping it up.
    error StreamDepleted(uint256 id);
    /// @notice Nothing has streamed to stream `id`'s provider since the last withdrawal.
    error NothingToWithdraw(uint256 id);
    /// @notice A milestone escrow needs at least one milestone.
    error NoMilestones();
    /// @notice Escrow `id` has no milestone `index`.
    error NoSuchMilestone(uint256 id, uint256 index);
    /// @notice Milestone `index` of escrow `id` was released already.
    error AlreadyReleased(uint256 id, uint256 index);
    /// @notice A batch had `recipients` recipients but `amounts` amounts.
    error LengthMismatch(uint256 recipients, uint256 amounts);
    /// @notice A batch had no recipients, or a zero id.
    error EmptyBatch();
    /// @notice The caller paid batch `batchId` already.
    error BatchAlreadyPaid(bytes32 batchId);

    /// @notice The protocol fee in basis points: 100, 1 %.
    function FEE_BPS() external view returns (uint256);
    /// @notice The role (the grid) allowed to close any escrow and release any milestone.
    function ARBITER_ROLE() external view returns (bytes32);
    /// @notice The escrowed token.
    function token() external view returns (address);
    /// @notice Where fees go.
    function treasury() external view returns (address);
    /// @notice The fee on a payout of `amount`: `amount * FEE_BPS / 10_000`, rounded down.
    function feeOf(uint256 amount) external pure returns (uint256);

    /// @notice Opens a stream from the caller to `provider`, funded with `deposit` (approved to this contract).
    function openStream(address provider, uint256 deposit, uint256 ratePerSecond) external returns (uint256 id);
    /// @notice What stream `id` has streamed so far: min(deposit, rate * elapsed), frozen once closed.
    /// For a milestone escrow, what has been released (fees included).
    function streamed(uint256 id) external view returns (uint256);
    /// @notice What stream `id`'s provider can withdraw now (before the fee): streamed minus withdrawn.
    function withdrawable(uint256 id) external view returns (uint256);
    /// @notice Pays stream `id`'s provider what has streamed since the last withdrawal, less the fee. Anyone may call.
    function withdraw(uint256 id) external;
    /// @notice Adds `amount` to stream `id`'s deposit. Only its payer, only while it still streams.
    function topUp(uint256 id, uint256 amount) external;
    /// @notice Closes escrow `id`: pays the provider what has streamed and not been withdrawn (less
    /// the fee), refunds the rest (for milestones: every unreleased one) to the payer. Only the
    /// payer, the provider or `ARBITER_ROLE`.
    function close(uint256 id) external;
    /// @notice Opens a milestone escrow from the caller to `provider`, funded with the sum of `amounts`.
    function openMilestones(address provider, uint256[] calldata amounts) external returns (uint256 id);
    /// @notice Pays milestone `index` of escrow `id` to its provider, less the fee. Only the payer or `ARBITER_ROLE`, once.
    function release(uint256 id, uint256 index) external;
    /// @notice Pays `amounts[i]` from the caller to `to[i]` for each i, without a fee, once per
    /// (caller, `batchId`): the grid's operator payouts.
    function payBatch(bytes32 batchId, address[] calldata to, uint256[] calldata amounts) external;

    /// @notice Escrow `id`; `withdrawn` is what has left it for the provider and treasury so far
    /// (for milestones, the released amounts); `ratePerSecond` is 0 for a milestone escrow.
    function streamOf(uint256 id)
        external
        view
        returns (
            address payer,
            address provider,
            uint256 deposit,
            uint256 ratePerSecond,
            uint64 start,
            uint256 withdrawn,
            bool closed
        );
    /// @notice How many milestones escrow `id` has (0 for a stream).
    function milestoneCount(uint256 id) external view returns (uint256);
    /// @notice Milestone `index` of escrow `id`: its amount and whether it was released.
    function milestoneOf(uint256 id, uint256 index) external view returns (uint256 amount, bool released);
    /// @notice Whether `payer` has paid batch `batchId`.
    function batchPaid(address payer, bytes32 batchId) external view returns (bool);
}
