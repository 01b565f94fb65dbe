ALTER TABLE evaluations DROP COLUMN lifecycle_stage;
ALTER TABLE evaluations DROP COLUMN currency;
DROP INDEX evaluations_value_lost;
ALTER TABLE evaluations DROP COLUMN value_lost;
