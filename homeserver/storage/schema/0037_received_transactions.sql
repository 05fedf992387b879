-- Owner: storage.federation_inbound.
--
-- Transactions other servers sent us (PUT /_matrix/federation/v1/send/{txnId}) and the
-- response we gave, so a retry of the same (origin, txnId) gets that response again and
-- nothing in it is processed twice (spec: server-server-api.md#transactions: the sender
-- retries until it gets a 200).  Kept a day: a sender retries for minutes, not days.
CREATE TABLE received_transactions (
    origin TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    -- the JSON response body we answered with
    response_json TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    PRIMARY KEY (origin, transaction_id)
);

CREATE INDEX received_transactions_by_ts ON received_transactions (received_ts);
