-- Access-token revocation (web/revocation.py): every token carries the generation of its user
-- at issue time; bumping the generation (logout-all, disable, role or password change) refuses
-- every token issued before. PostgreSQL holds the truth, Redis a shared copy.
ALTER TABLE users ADD COLUMN token_gen bigint NOT NULL DEFAULT 0;
