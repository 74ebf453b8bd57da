-- The engine and version a native-class job pins (`onnxruntime 1.32.0`, `blender 3.4.1`): only
-- nodes announcing that exact engine lease the job.
ALTER TABLE compute_jobs ADD COLUMN engine TEXT;
