//! Embedding throughput and load time of [`Embedder`], for the figures in the crate's README:
//! `cargo run -p sgl-engine --example embed_bench -- MODEL.gguf [ROUNDS]`.
//!
//! For 1 and 2 threads: loads the model (timed, hashing included), embeds the 32 short sentences
//! once to warm up, then ROUNDS (default 5) calls of all 32 and prints the median embeddings/s
//! and prompt tokens/s as a Markdown table.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use sgl_engine::embed::{EmbedOptions, Embedder};

/// Short sentences of 6 to 15 tokens, as a search index or a chat memory would send.
const SENTENCES: [&str; 32] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The stock market crashed today.",
    "How do I reset my password?",
    "The cat sat on the warm windowsill.",
    "Rust makes systems programming safer.",
    "What is the capital of Australia?",
    "She plays the violin every evening.",
    "The train to Berlin leaves at nine.",
    "Embeddings map text to vectors.",
    "Our servers are located in Frankfurt.",
    "Please send me the invoice by Friday.",
    "The weather will be sunny tomorrow.",
    "He forgot his umbrella at the office.",
    "Large language models predict tokens.",
    "The museum opens at ten in the morning.",
    "Add two cups of flour and stir well.",
    "The river flooded after the storm.",
    "Can you recommend a good Italian restaurant?",
    "The meeting has been moved to Tuesday.",
    "Quantum computers use qubits.",
    "My laptop battery drains too quickly.",
    "The children built a sandcastle on the beach.",
    "Interest rates rose by half a percent.",
    "A dog chased the ball across the park.",
    "This function returns an error on empty input.",
    "The library is closed on public holidays.",
    "Solar panels convert sunlight into electricity.",
    "The goalkeeper saved a penalty in the final minute.",
    "Where can I buy train tickets?",
    "The recipe calls for fresh basil.",
    "Mountains are covered with snow in winter.",
];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model_path = PathBuf::from(args.next().context("usage: embed_bench MODEL.gguf [ROUNDS]")?);
    let rounds: usize = args.next().map(|r| r.parse()).transpose().context("ROUNDS is a number")?.unwrap_or(5).max(1);
    let inputs: Vec<String> = SENTENCES.iter().map(|s| (*s).to_owned()).collect();
    println!("| threads | load (ms) | embeddings/s | prompt tokens/s | tokens per sentence |");
    println!("|---:|---:|---:|---:|---:|");
    for threads in [1, 2] {
        let options = EmbedOptions {
            model_path: model_path.clone(),
            model_name: None,
            threads,
            gpu_layers: 0,
            max_input_tokens: None,
        };
        let started = Instant::now();
        let embedder = Embedder::load(&options)?;
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let tokens = embedder.embed(&inputs)?.prompt_tokens();
        let mut rates: Vec<f64> = (0..rounds)
            .map(|_| {
                let started = Instant::now();
                embedder.embed(&inputs).map(|_| inputs.len() as f64 / started.elapsed().as_secs_f64())
            })
            .collect::<Result<_, _>>()?;
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        let per_sentence = tokens as f64 / inputs.len() as f64;
        println!("| {threads} | {load_ms:.0} | {median:.0} | {:.0} | {per_sentence:.1} |", median * per_sentence);
    }
    Ok(())
}
