DROP TABLE refresh_chunks;
DROP TABLE refresh_runs;
