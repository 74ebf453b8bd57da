-- A fault (job and reason) is slashed once, even when two replicas refuse its result at once.
CREATE UNIQUE INDEX slashes_once ON slashes (job_id, reason) WHERE job_id IS NOT NULL;
