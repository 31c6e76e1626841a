-- Deployments recorded by CI pipelines, for release verification.
CREATE TABLE deployments (
    id BIGSERIAL PRIMARY KEY,
    deployed_at BIGINT NOT NULL,
    document JSONB NOT NULL
);
CREATE INDEX deployments_by_time ON deployments (deployed_at);
