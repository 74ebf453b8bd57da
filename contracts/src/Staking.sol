// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IStaking} from "./interfaces/IStaking.sol";

/// @title Operator stake with a 7-day unstake delay during which the stake stays slashable.
/// @notice The grid admits an operator's nodes by its active stake, and slashes (with the hash of
/// the evidence: a failed quorum, a canary record) through `SLASHER_ROLE`. Slashed stake goes to
/// the treasury.
/// @dev `admin` gets `DEFAULT_ADMIN_ROLE` and `SLASHER_ROLE`, so a grid deploying with its own key
/// can slash at once; the admin grants and revokes slashers afterwards.
contract Staking is IStaking, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @inheritdoc IStaking
    uint256 public constant UNSTAKE_DELAY = 7 days;
    /// @inheritdoc IStaking
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    /// @inheritdoc IStaking
    address public immutable token;
    /// @inheritdoc IStaking
    address public immutable treasury;

    struct Stake {
        uint256 active;
        uint256 pending;
        uint64 unlockAt;
    }

    mapping(address operator => Stake) private _stakes;

    /// @param token_ The staked token.
    /// @param admin Gets `DEFAULT_ADMIN_ROLE` and `SLASHER_ROLE`.
    /// @param treasury_ Where slashed stake goes.
    constructor(IERC20 token_, address admin, address treasury_) {
        require(address(token_) != address(0) && admin != address(0) && treasury_ != address(0), ZeroAddress());
        token = address(token_);
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(SLASHER_ROLE, admin);
    }

    /// @inheritdoc IStaking
    function stake(uint256 amount) external nonReentrant {
        require(amount > 0, ZeroAmount());
        Stake storage s = _stakes[msg.sender];
        s.active += amount;
        emit Staked(msg.sender, amount, s.active);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStaking
    function requestUnstake(uint256 amount) external {
        require(amount > 0, ZeroAmount());
        Stake storage s = _stakes[msg.sender];
        require(amount <= s.active, InsufficientStake(s.active, amount));
        s.active -= amount;
        s.pending += amount;
        // casting to uint64 is safe because timestamps fit in 64 bits for another 584 billion years
        // forge-lint: disable-next-line(unsafe-typecast)
        s.unlockAt = uint64(block.timestamp + UNSTAKE_DELAY);
        emit UnstakeRequested(msg.sender, amount, s.pending, s.unlockAt);
    }

    /// @inheritdoc IStaking
    function withdraw() external nonReentrant {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.pending;
        require(amount > 0, NothingPending());
        require(block.timestamp >= s.unlockAt, StillLocked(s.unlockAt));
        s.pending = 0;
        s.unlockAt = 0;
        emit Withdrawn(msg.sender, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IStaking
    function slash(address operator, uint256 amount, bytes32 evidence) external onlyRole(SLASHER_ROLE) nonReentrant {
        require(evidence != bytes32(0), NoEvidence());
        require(amount > 0, ZeroAmount());
        Stake storage s = _stakes[operator];
        require(s.active + s.pending > 0, NothingToSlash(operator));
        uint256 fromActive = amount < s.active ? amount : s.active;
        uint256 rest = amount - fromActive;
        uint256 fromPending = rest < s.pending ? rest : s.pending;
        s.active -= fromActive;
        s.pending -= fromPending;
        if (s.pending == 0) s.unlockAt = 0;
        uint256 taken = fromActive + fromPending;
        emit Slashed(operator, taken, evidence);
        IERC20(token).safeTransfer(treasury, taken);
    }

    /// @inheritdoc IStaking
    function stakeOf(address operator) external view returns (uint256 active, uint256 pending, uint64 unlockAt) {
        Stake storage s = _stakes[operator];
        return (s.active, s.pending, s.unlockAt);
    }
}
