//! A `render` job's arguments, typed: the job's settings (`--samples N`, `--resolution WxH`,
//! `--seed S`) and the slice's part of a frame (`--frame N`, `--rows START-END`), as
//! `sgl-cloud render` writes them. Nothing else is accepted, so no text of the requester's
//! reaches Blender's command line.

use sgl_media::blender::{RenderSettings, RenderSlice, SliceError};

/// Arguments that do not describe a render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RenderArgsError {
    /// An argument this class does not know.
    #[error("unknown argument {0:?} (known: --samples, --resolution, --seed, --frame, --rows)")]
    Unknown(String),
    /// A flag without its value.
    #[error("{0} needs a value")]
    Missing(&'static str),
    /// A flag given twice.
    #[error("{0} is given twice")]
    Twice(&'static str),
    /// A value that does not parse.
    #[error("{flag} {value:?} is not {expected}")]
    Value {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A slice without `--frame`, or a job without `--samples`.
    #[error("{0} is required")]
    Required(&'static str),
    /// The frame or rows are out of range.
    #[error(transparent)]
    Slice(#[from] SliceError),
}

const FLAGS: [&str; 5] = ["--samples", "--resolution", "--seed", "--frame", "--rows"];

/// Parses the job's and the slice's arguments together; `threads` is the node's own choice.
pub(crate) fn parse(args: &[String], threads: u32) -> Result<(RenderSlice, RenderSettings), RenderArgsError> {
    let mut values: [Option<&str>; 5] = [None; 5];
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let index = FLAGS.iter().position(|f| f == word).ok_or_else(|| RenderArgsError::Unknown(word.clone()))?;
        let value = words.next().ok_or(RenderArgsError::Missing(FLAGS[index]))?;
        if values[index].replace(value).is_some() {
            return Err(RenderArgsError::Twice(FLAGS[index]));
        }
    }
    let [samples, resolution, seed, frame, rows] = values;
    let samples = number("--samples", samples.ok_or(RenderArgsError::Required("--samples"))?)?;
    let resolution = resolution.map(|text| pair("--resolution", text, 'x', "WIDTHxHEIGHT")).transpose()?;
    let seed = seed.map(|text| number("--seed", text)).transpose()?.unwrap_or(0);
    let frame = number("--frame", frame.ok_or(RenderArgsError::Required("--frame"))?)?;
    let slice = match rows {
        None => RenderSlice::frame(frame)?,
        Some(text) => {
            let (start, end) = pair("--rows", text, '-', "START-END")?;
            RenderSlice::band(frame, start, end)?
        }
    };
    Ok((slice, RenderSettings { samples, threads, resolution, seed }))
}

fn number(flag: &'static str, text: &str) -> Result<u32, RenderArgsError> {
    text.parse().map_err(|_| RenderArgsError::Value { flag, value: text.to_owned(), expected: "a whole number" })
}

fn pair(
    flag: &'static str,
    text: &str,
    separator: char,
    expected: &'static str,
) -> Result<(u32, u32), RenderArgsError> {
    let bad = || RenderArgsError::Value { flag, value: text.to_owned(), expected };
    let (a, b) = text.split_once(separator).ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    //! What `sgl-cloud render` writes parses; nothing else does.

    use super::{RenderArgsError, parse};

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_band_of_a_frame_with_the_jobs_settings() {
        let (slice, settings) = parse(&args("--samples 16 --resolution 160x120 --frame 3 --rows 0-60"), 2).unwrap();
        assert_eq!((slice.frame_number(), slice.rows()), (3, Some((0, 60))));
        assert_eq!(
            (settings.samples, settings.resolution, settings.seed, settings.threads),
            (16, Some((160, 120)), 0, 2)
        );
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        assert_eq!(parse(&args("--samples 16"), 1).unwrap_err(), RenderArgsError::Required("--frame"));
        assert_eq!(parse(&args("--frame 1"), 1).unwrap_err(), RenderArgsError::Required("--samples"));
        assert_eq!(parse(&args("--samples 1 --frame 1 --frame 2"), 1).unwrap_err(), RenderArgsError::Twice("--frame"));
        assert_eq!(
            parse(&args("--samples 1 --frame 1 --python-expr x"), 1).unwrap_err(),
            RenderArgsError::Unknown("--python-expr".into())
        );
        assert!(matches!(parse(&args("--samples 1 --frame 1 --rows 9"), 1), Err(RenderArgsError::Value { .. })));
        assert!(matches!(parse(&args("--samples 1 --frame 1 --rows 60-0"), 1), Err(RenderArgsError::Slice(_))));
        assert_eq!(parse(&args("--samples"), 1).unwrap_err(), RenderArgsError::Missing("--samples"));
    }
}
