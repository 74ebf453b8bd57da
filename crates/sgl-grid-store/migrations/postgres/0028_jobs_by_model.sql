-- The operator page's "context too small" (`Store::prompts_at_least`) counts a model's recent
-- jobs by their prompt's size.
CREATE INDEX jobs_by_model_created ON jobs (model, created_at);
