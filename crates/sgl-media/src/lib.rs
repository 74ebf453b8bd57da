//! The `render` job class's pieces, without the sandbox or the grid:
//!
//! - [`blender`]: Blender's command line for one slice (a whole frame, or a band of its rows)
//!   rendered headless with Cycles on the CPU, the PNG it writes, the work the slice is billed
//!   by, and the installed Blender's version.
//! - [`pixels`]: PNGs compared by their decoded pixels ([`pixels::pixel_digest`]), since
//!   Blender's PNG bytes differ run to run (metadata) while its pixels do not.
//! - [`merge`]: bands of rows stacked back into a frame.
//!
//! The node runs the command line under its native sandbox (`sgl-sandbox`'s `NativeSandbox`,
//! with the scene read-only at `/in` and the output at `/out`; [`blender::SANDBOX_ENV`] and
//! [`blender::SANDBOX_READ_ONLY_PATHS`] are what Blender needs there besides) and reports the
//! output's pixel digest; redundant nodes agree when their digests do.

pub mod blender;
pub mod merge;
pub mod pixels;
