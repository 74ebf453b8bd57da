// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title Providers' bonds, their slashing on evidence, their reputation, and a 7-day exit.
/// @notice A provider registers with a bond of at least `minBond` and the hash of its metadata.
/// The grid slashes a bond (with the evidence's hash) through `SLASHER_ROLE`, sending it to the
/// treasury, and records reputation through `VERIFIER_ROLE`. A provider that asks to leave stays
/// registered and slashable for `DEREGISTER_DELAY`, then withdraws what is left of its bond.
/// @dev `admin` gets `DEFAULT_ADMIN_ROLE`, `SLASHER_ROLE` and `VERIFIER_ROLE`, so a grid deploying
/// with its own key works at once; the admin grants and revokes the roles afterwards.
contract ProviderRegistry is IProviderRegistry, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @inheritdoc IProviderRegistry
    uint256 public constant DEREGISTER_DELAY = 7 days;
    /// @inheritdoc IProviderRegistry
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @inheritdoc IProviderRegistry
    bytes32 public constant VERIFIER_ROLE = keccak256("VERIFIER_ROLE");

    /// @inheritdoc IProviderRegistry
    address public immutable token;
    /// @inheritdoc IProviderRegistry
    address public immutable treasury;
    /// @inheritdoc IProviderRegistry
    uint256 public immutable minBond;

    struct Provider {
        uint256 bond;
        bytes32 metadataHash;
        uint64 unlockAt;
        bool registered;
    }

    mapping(address provider => Provider) private _providers;
    /// @dev Kept apart from `_providers`: a reputation outlives a registration.
    mapping(address provider => uint32) private _reputation;

    /// @param token_ The bond token.
    /// @param minBond_ The smallest bond `register` accepts.
    /// @param admin Gets `DEFAULT_ADMIN_ROLE`, `SLASHER_ROLE` and `VERIFIER_ROLE`.
    /// @param treasury_ Where slashed bonds go.
    constructor(IERC20 token_, uint256 minBond_, address admin, address treasury_) {
        require(address(token_) != address(0) && admin != address(0) && treasury_ != address(0), ZeroAddress());
        token = address(token_);
        minBond = minBond_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(SLASHER_ROLE, admin);
        _grantRole(VERIFIER_ROLE, admin);
    }

    /// @inheritdoc IProviderRegistry
    function register(uint256 bond, bytes32 metadataHash) external nonReentrant {
        Provider storage p = _providers[msg.sender];
        require(!p.registered, AlreadyRegistered());
        require(bond > 0, ZeroAmount());
        require(bond >= minBond, BondTooSmall(bond, minBond));
        p.registered = true;
        p.bond = bond;
        p.metadataHash = metadataHash;
        emit Registered(msg.sender, bond, metadataHash);
        IERC20(token).safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc IProviderRegistry
    function topUp(uint256 amount) external nonReentrant {
        Provider storage p = _providers[msg.sender];
        require(p.registered, NotRegistered(msg.sender));
        require(p.unlockAt == 0, DeregisterPending(p.unlockAt));
        require(amount > 0, ZeroAmount());
        p.bond += amount;
        emit BondToppedUp(msg.sender, amount, p.bond);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IProviderRegistry
    function requestDeregister() external {
        Provider storage p = _providers[msg.sender];
        require(p.registered, NotRegistered(msg.sender));
        require(p.unlockAt == 0, DeregisterPending(p.unlockAt));
        // casting to uint64 is safe because timestamps fit in 64 bits for another 584 billion years
        // forge-lint: disable-next-line(unsafe-typecast)
        p.unlockAt = uint64(block.timestamp + DEREGISTER_DELAY);
        emit DeregisterRequested(msg.sender, p.unlockAt);
    }

    /// @inheritdoc IProviderRegistry
    function withdrawBond() external nonReentrant {
        Provider storage p = _providers[msg.sender];
        require(p.registered, NotRegistered(msg.sender));
        require(p.unlockAt != 0, NoDeregisterRequest());
        require(block.timestamp >= p.unlockAt, StillLocked(p.unlockAt));
        uint256 amount = p.bond;
        delete _providers[msg.sender];
        emit Deregistered(msg.sender, amount);
        // A bond slashed to nothing still deregisters; there is just nothing to send.
        if (amount > 0) IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IProviderRegistry
    function slash(address provider, uint256 amount, bytes32 evidence) external onlyRole(SLASHER_ROLE) nonReentrant {
        require(evidence != bytes32(0), NoEvidence());
        require(amount > 0, ZeroAmount());
        Provider storage p = _providers[provider];
        require(p.registered, NotRegistered(provider));
        require(p.bond > 0, NothingToSlash(provider));
        uint256 taken = amount < p.bond ? amount : p.bond;
        p.bond -= taken;
        emit BondSlashed(provider, taken, evidence);
        IERC20(token).safeTransfer(treasury, taken);
    }

    /// @inheritdoc IProviderRegistry
    function setReputation(address provider, uint32 score) external onlyRole(VERIFIER_ROLE) {
        require(provider != address(0), ZeroAddress());
        _reputation[provider] = score;
        emit ReputationSet(provider, score);
    }

    /// @inheritdoc IProviderRegistry
    function providerOf(address provider)
        external
        view
        returns (bool registered, uint256 bond, bytes32 metadataHash, uint64 unlockAt, uint32 reputation)
    {
        Provider storage p = _providers[provider];
        return (p.registered, p.bond, p.metadataHash, p.unlockAt, _reputation[provider]);
    }
}
