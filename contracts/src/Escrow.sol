// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IEscrow} from "./interfaces/IEscrow.sol";

/// @title Escrowed payments: streams for leases, milestones for jobs, batches for payouts.
/// @notice A requester (the payer) deposits into an escrow for one provider. A stream pays
/// `ratePerSecond` from its start until the deposit is used up; the provider (or anyone) withdraws
/// what has streamed, and closing pays the rest of what streamed and refunds what did not. A
/// milestone escrow pays each milestone when the payer or the grid (`ARBITER_ROLE`) releases it,
/// and closing refunds the unreleased ones. Every payout to a provider pays 1 % (rounded down) to
/// the treasury. `payBatch` moves the grid's already-net operator payouts, once per batch id.
/// @dev Escrowed funds never leave except to the provider, the treasury or the payer, and the sum
/// of what leaves an escrow is at most its deposit: a stream caps at its deposit, a release pays
/// one milestone of a deposit that is their sum, and close refunds `deposit - streamed`.
/// `admin` gets `DEFAULT_ADMIN_ROLE` and `ARBITER_ROLE`.
contract Escrow is IEscrow, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @inheritdoc IEscrow
    uint256 public constant FEE_BPS = 100;
    /// @inheritdoc IEscrow
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    uint256 private constant BPS = 10_000;

    /// @inheritdoc IEscrow
    address public immutable token;
    /// @inheritdoc IEscrow
    address public immutable treasury;

    /// @dev One escrow, a stream (`ratePerSecond > 0`) or milestones (`ratePerSecond == 0`).
    /// `withdrawn` counts what left for the provider and the treasury together.
    struct Deal {
        address payer;
        uint64 start;
        bool closed;
        address provider;
        uint64 closedAt;
        uint256 deposit;
        uint256 ratePerSecond;
        uint256 withdrawn;
    }

    uint256 private _nextId = 1;
    mapping(uint256 id => Deal) private _deals;
    mapping(uint256 id => uint256[]) private _milestones;
    mapping(uint256 id => mapping(uint256 index => bool)) private _released;
    mapping(address payer => mapping(bytes32 batchId => bool)) private _batches;

    /// @param token_ The escrowed token.
    /// @param admin Gets `DEFAULT_ADMIN_ROLE` and `ARBITER_ROLE`.
    /// @param treasury_ Where fees go.
    constructor(IERC20 token_, address admin, address treasury_) {
        require(address(token_) != address(0) && admin != address(0) && treasury_ != address(0), ZeroAddress());
        token = address(token_);
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ARBITER_ROLE, admin);
    }

    // ---- streams ----

    /// @inheritdoc IEscrow
    function openStream(address provider, uint256 deposit, uint256 ratePerSecond)
        external
        nonReentrant
        returns (uint256 id)
    {
        require(provider != address(0), ZeroAddress());
        require(deposit > 0, ZeroAmount());
        require(ratePerSecond > 0, ZeroRate());
        id = _nextId++;
        Deal storage d = _deals[id];
        d.payer = msg.sender;
        d.provider = provider;
        d.start = uint64(block.timestamp);
        d.deposit = deposit;
        d.ratePerSecond = ratePerSecond;
        emit StreamOpened(id, msg.sender, provider, deposit, ratePerSecond, d.start);
        IERC20(token).safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @inheritdoc IEscrow
    function streamed(uint256 id) public view returns (uint256) {
        Deal storage d = _deal(id);
        if (d.ratePerSecond == 0) return d.withdrawn;
        uint256 end = d.closed ? d.closedAt : block.timestamp;
        uint256 elapsed = end - d.start;
        // Compare before multiplying: rate * elapsed may not fit, and a view that reverts would
        // lock the stream. When elapsed <= deposit / rate, rate * elapsed <= deposit.
        if (elapsed > d.deposit / d.ratePerSecond) return d.deposit;
        uint256 sofar = d.ratePerSecond * elapsed;
        return sofar < d.deposit ? sofar : d.deposit;
    }

    /// @inheritdoc IEscrow
    function withdrawable(uint256 id) public view returns (uint256) {
        return streamed(id) - _deals[id].withdrawn;
    }

    /// @inheritdoc IEscrow
    function withdraw(uint256 id) external nonReentrant {
        Deal storage d = _deal(id);
        require(d.ratePerSecond > 0, NotAStream(id));
        uint256 due = withdrawable(id);
        require(due > 0, NothingToWithdraw(id));
        d.withdrawn += due;
        (uint256 net, uint256 fee) = _split(due);
        emit Withdrawn(id, d.provider, net, fee);
        _payOut(d.provider, net, fee);
    }

    /// @inheritdoc IEscrow
    function topUp(uint256 id, uint256 amount) external nonReentrant {
        Deal storage d = _deal(id);
        require(d.ratePerSecond > 0, NotAStream(id));
        require(msg.sender == d.payer, NotPayer(id));
        require(!d.closed, AlreadyClosed(id));
        require(amount > 0, ZeroAmount());
        // A stream that ran dry stays dry: topping it up would pay the provider for the time it
        // was not funded (streamed is measured from the start).
        require(streamed(id) < d.deposit, StreamDepleted(id));
        d.deposit += amount;
        emit ToppedUp(id, amount, d.deposit);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IEscrow
    function close(uint256 id) external nonReentrant {
        Deal storage d = _deal(id);
        require(!d.closed, AlreadyClosed(id));
        require(
            msg.sender == d.payer || msg.sender == d.provider || hasRole(ARBITER_ROLE, msg.sender),
            Unauthorized(id, msg.sender)
        );
        uint256 sofar = streamed(id);
        uint256 due = sofar - d.withdrawn;
        uint256 refund = d.deposit - sofar;
        d.closed = true;
        d.closedAt = uint64(block.timestamp);
        d.withdrawn = sofar;
        (uint256 net, uint256 fee) = _split(due);
        emit Closed(id, net, fee, refund);
        _payOut(d.provider, net, fee);
        if (refund > 0) IERC20(token).safeTransfer(d.payer, refund);
    }

    // ---- milestones ----

    /// @inheritdoc IEscrow
    function openMilestones(address provider, uint256[] calldata amounts) external nonReentrant returns (uint256 id) {
        require(provider != address(0), ZeroAddress());
        require(amounts.length > 0, NoMilestones());
        uint256 deposit;
        for (uint256 i = 0; i < amounts.length; ++i) {
            require(amounts[i] > 0, ZeroAmount());
            deposit += amounts[i];
        }
        id = _nextId++;
        Deal storage d = _deals[id];
        d.payer = msg.sender;
        d.provider = provider;
        d.start = uint64(block.timestamp);
        d.deposit = deposit;
        _milestones[id] = amounts;
        emit MilestonesOpened(id, msg.sender, provider, deposit, amounts.length);
        IERC20(token).safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @inheritdoc IEscrow
    function release(uint256 id, uint256 index) external nonReentrant {
        Deal storage d = _deal(id);
        require(d.ratePerSecond == 0, NotMilestones(id));
        require(msg.sender == d.payer || hasRole(ARBITER_ROLE, msg.sender), Unauthorized(id, msg.sender));
        require(!d.closed, AlreadyClosed(id));
        require(index < _milestones[id].length, NoSuchMilestone(id, index));
        require(!_released[id][index], AlreadyReleased(id, index));
        uint256 amount = _milestones[id][index];
        _released[id][index] = true;
        d.withdrawn += amount;
        (uint256 net, uint256 fee) = _split(amount);
        emit Released(id, index, net, fee);
        _payOut(d.provider, net, fee);
    }

    // ---- batch payouts ----

    /// @inheritdoc IEscrow
    function payBatch(bytes32 batchId, address[] calldata to, uint256[] calldata amounts) external nonReentrant {
        require(to.length == amounts.length, LengthMismatch(to.length, amounts.length));
        require(to.length > 0 && batchId != bytes32(0), EmptyBatch());
        // Keyed by payer too: otherwise anyone could spend the grid's next batch id first and
        // make the grid's payout revert.
        require(!_batches[msg.sender][batchId], BatchAlreadyPaid(batchId));
        _batches[msg.sender][batchId] = true;
        IERC20 t = IERC20(token);
        uint256 total;
        for (uint256 i = 0; i < to.length; ++i) {
            require(to[i] != address(0), ZeroAddress());
            require(amounts[i] > 0, ZeroAmount());
            total += amounts[i];
            emit Paid(batchId, to[i], amounts[i]);
            t.safeTransferFrom(msg.sender, to[i], amounts[i]);
        }
        emit BatchPaid(batchId, to.length, total);
    }

    // ---- views ----

    /// @inheritdoc IEscrow
    function feeOf(uint256 amount) public pure returns (uint256) {
        return amount * FEE_BPS / BPS;
    }

    /// @inheritdoc IEscrow
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
        )
    {
        Deal storage d = _deal(id);
        return (d.payer, d.provider, d.deposit, d.ratePerSecond, d.start, d.withdrawn, d.closed);
    }

    /// @inheritdoc IEscrow
    function milestoneCount(uint256 id) external view returns (uint256) {
        _deal(id);
        return _milestones[id].length;
    }

    /// @inheritdoc IEscrow
    function milestoneOf(uint256 id, uint256 index) external view returns (uint256 amount, bool released) {
        _deal(id);
        require(index < _milestones[id].length, NoSuchMilestone(id, index));
        return (_milestones[id][index], _released[id][index]);
    }

    /// @inheritdoc IEscrow
    function batchPaid(address payer, bytes32 batchId) external view returns (bool) {
        return _batches[payer][batchId];
    }

    // ---- internals ----

    function _deal(uint256 id) private view returns (Deal storage d) {
        d = _deals[id];
        require(d.payer != address(0), UnknownEscrow(id));
    }

    /// @dev `amount` less the fee, and the fee. The fee rounds down, so the provider never gets less
    /// than 99 % and the two always add up to `amount`.
    function _split(uint256 amount) private pure returns (uint256 net, uint256 fee) {
        fee = feeOf(amount);
        net = amount - fee;
    }

    function _payOut(address provider, uint256 net, uint256 fee) private {
        IERC20 t = IERC20(token);
        if (net > 0) t.safeTransfer(provider, net);
        if (fee > 0) t.safeTransfer(treasury, fee);
    }
}
