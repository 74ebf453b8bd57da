-- The model an `llm` job pins (its GGUF's SHA-256): only nodes serving it lease the job.
ALTER TABLE compute_jobs ADD COLUMN model_sha256 TEXT;
