DROP TABLE interactions;
DROP TABLE feedback;
DROP TABLE payments;
DROP TABLE transactions;
DROP TABLE events;
DROP TABLE customers;
