-- The win-back list: customers who have lapsed (no purchase for more than 180 days) or
-- churned, by the value lost with them (EvaluationService.ListWinBack). NULL for every
-- customer still with us, so the at-risk and win-back lists never share a customer.
-- Snapshots stored before this column get it at the next refresh.
ALTER TABLE evaluations ADD COLUMN value_lost DOUBLE PRECISION;
CREATE INDEX evaluations_value_lost ON evaluations (value_lost DESC, customer_id);
-- The currency of a snapshot's amounts, so that money is summed per currency (the
-- overview's value at risk), never across currencies.
ALTER TABLE evaluations ADD COLUMN currency TEXT;
-- The lifecycle stage of each snapshot, so that the at-risk list can be filtered by it.
ALTER TABLE evaluations ADD COLUMN lifecycle_stage TEXT;
