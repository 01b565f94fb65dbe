DROP TABLE scoring_schemes;
DROP TABLE evaluations;
