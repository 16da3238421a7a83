-- Synapse's database, next to Harmony's (POSTGRES_DB) in the compose file's PostgreSQL.
-- Synapse requires the C collation; Harmony's database keeps the cluster's default.
-- The postgres image runs this once, when its volume is new.
CREATE DATABASE synapse
    OWNER harmony
    ENCODING 'UTF8'
    LC_COLLATE 'C'
    LC_CTYPE 'C'
    TEMPLATE template0;
