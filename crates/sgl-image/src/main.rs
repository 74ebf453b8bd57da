//! `sgl-image`: the image job class's worker binary.
//!
//! - `sgl-image generate --pipeline /in/pipeline.json --out /out --seed S [--count N]
//!   [--prompt TEXT] [--threads 1]` writes `/out/image-0000.png` … and prints one JSON line:
//!   `{"images":N,"engine":"onnxruntime","engine_version":"1.32.0","seconds":…,"load_seconds":…,
//!   "threads":1,"seed":S}`.
//! - `sgl-image bench --pipeline P [--count 20] [--threads 1]` makes images in memory and
//!   prints load time and images per second.
//! - `sgl-image version [--json]` prints the engine and the ONNX Runtime version actually loaded.
//!
//! The ONNX Runtime library is `--ort PATH` or `$ORT_DYLIB_PATH`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use sgl_image::{ENGINE_NAME, Engine, Generator, Pipeline, RunSettings, write_images};

#[derive(Debug, Parser)]
#[command(name = "sgl-image", version, about = "Runs an ONNX image pipeline reproducibly on ONNX Runtime")]
struct Cli {
    /// The ONNX Runtime shared library (libonnxruntime.so.X.Y.Z).
    #[arg(long, global = true, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    ort: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate images into a folder.
    Generate {
        #[command(flatten)]
        run: RunArgs,
        /// The output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The run's seed: image i's noise is ChaCha20 stream i keyed by it.
        #[arg(long)]
        seed: u64,
        /// How many images.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        count: u64,
    },
    /// Measure load time and images per second (images are made in memory, not written).
    Bench {
        #[command(flatten)]
        run: RunArgs,
        /// The run's seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// How many images.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        count: u64,
    },
    /// Print the engine and the ONNX Runtime version loaded.
    Version {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The pipeline file; model paths in it are relative to it.
    #[arg(long)]
    pipeline: PathBuf,
    /// The prompt (text-to-image pipelines only).
    #[arg(long)]
    prompt: Option<String>,
    /// Intra-op threads per model.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
}

#[derive(Debug, Serialize)]
struct GenerateSummary<'a> {
    images: u64,
    engine: &'a str,
    engine_version: &'a str,
    seconds: f64,
    load_seconds: f64,
    threads: u16,
    seed: u64,
}

#[derive(Debug, Serialize)]
struct BenchSummary<'a> {
    images: u64,
    engine: &'a str,
    engine_version: &'a str,
    threads: u16,
    load_seconds: f64,
    seconds: f64,
    images_per_second: f64,
}

#[derive(Debug, Serialize)]
struct VersionInfo<'a> {
    engine: &'a str,
    engine_version: &'a str,
    build_info: &'a str,
    library: &'a Path,
    worker: &'a str,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let library = cli.ort.context(
        "no ONNX Runtime library: set ORT_DYLIB_PATH (or pass --ort) to the path of libonnxruntime.so.<version>",
    )?;
    let started = Instant::now();
    let engine = Engine::load(&library)?;
    match cli.command {
        Command::Generate { run, out, seed, count } => {
            let mut generator = load(&engine, &run)?;
            let load_seconds = started.elapsed().as_secs_f64();
            write_images(&mut generator, seed, count, &out)?;
            print_json(&GenerateSummary {
                images: count,
                engine: ENGINE_NAME,
                engine_version: engine.version(),
                seconds: started.elapsed().as_secs_f64(),
                load_seconds,
                threads: run.threads,
                seed,
            })
        }
        Command::Bench { run, seed, count } => bench(&engine, &run, seed, count, started),
        Command::Version { json } => {
            if json {
                print_json(&VersionInfo {
                    engine: ENGINE_NAME,
                    engine_version: engine.version(),
                    build_info: engine.build_info(),
                    library: engine.library(),
                    worker: concat!("sgl-image ", env!("CARGO_PKG_VERSION")),
                })
            } else {
                println!("{ENGINE_NAME} {}", engine.version());
                Ok(())
            }
        }
    }
}

fn load(engine: &Engine, run: &RunArgs) -> Result<Generator> {
    let pipeline = Pipeline::load(&run.pipeline)?;
    let settings = RunSettings { threads: usize::from(run.threads), prompt: run.prompt.clone() };
    Ok(Generator::new(engine, &pipeline, &settings)?)
}

fn bench(engine: &Engine, run: &RunArgs, seed: u64, count: u64, started: Instant) -> Result<()> {
    let mut generator = load(engine, run)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let images_started = Instant::now();
    for index in 0..count {
        generator.image(seed, index)?.to_png()?;
    }
    let seconds = images_started.elapsed().as_secs_f64();
    print_json(&BenchSummary {
        images: count,
        engine: ENGINE_NAME,
        engine_version: engine.version(),
        threads: run.threads,
        load_seconds,
        seconds,
        images_per_second: count as f64 / seconds,
    })
}

fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
