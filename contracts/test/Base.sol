// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.26;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @dev The cheatcodes these tests use. forge-std is not on npm, and the cheatcodes live at a
/// fixed address, so an interface with just these calls is enough.
interface Vm {
    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function addr(uint256 privateKey) external returns (address);
    function sign(uint256 privateKey, bytes32 digest) external returns (uint8 v, bytes32 r, bytes32 s);
    function expectRevert(bytes4 selector) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(address emitter) external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
    function randomUint() external returns (uint256);

    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }
}

/// @dev What every test contract shares: the cheatcodes, named actors, and assertions that say
/// what differed.
abstract contract Base {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @dev Printed by forge with -vv.
    event log_named_uint(string key, uint256 val);

    /// The start of every test: a round, recognisable timestamp.
    uint256 internal constant T0 = 1_800_000_000;
    uint256 internal constant USDC = 1_000_000; // one token in 6-decimal units

    address internal admin = actor("admin (the grid)");
    address internal treasury = actor("treasury");
    address internal payer = actor("payer");
    address internal provider = actor("provider");
    address internal stranger = actor("stranger");

    function actor(string memory name) internal pure returns (address) {
        return address(uint160(uint256(keccak256(bytes(name)))));
    }

    function assertEq(uint256 got, uint256 want, string memory what) internal pure {
        require(got == want, string.concat(what, ": got ", Strings.toString(got), ", want ", Strings.toString(want)));
    }

    function assertEq(address got, address want, string memory what) internal pure {
        require(
            got == want, string.concat(what, ": got ", Strings.toHexString(got), ", want ", Strings.toHexString(want))
        );
    }

    function assertEq(bytes32 got, bytes32 want, string memory what) internal pure {
        require(
            got == want,
            string.concat(
                what, ": got ", Strings.toHexString(uint256(got)), ", want ", Strings.toHexString(uint256(want))
            )
        );
    }

    function assertTrue(bool condition, string memory what) internal pure {
        require(condition, what);
    }

    /// @dev `x` mapped into [lo, hi] (fuzz inputs).
    function clamp(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }
}
