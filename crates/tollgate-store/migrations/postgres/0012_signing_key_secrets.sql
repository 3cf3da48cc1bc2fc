-- HMAC signing keys (RFC 9421 `hmac-sha256`): the marketplace generates the shared secret
-- and keeps it only sealed by the keyring's data-encryption key (AAD
-- `tollgate/signing_keys/secret/<id>`). Such keys have no public key; every key has
-- exactly one of the two.
ALTER TABLE signing_keys ALTER COLUMN public_key_pem DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN secret_sealed BYTEA;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_one_key
    CHECK ((public_key_pem IS NULL) <> (secret_sealed IS NULL));
