-- Whether an API's calls must come over mutual TLS (RFC 8705).
ALTER TABLE apis ADD COLUMN mtls TEXT NOT NULL DEFAULT 'off' CHECK (mtls IN ('off', 'optional', 'required'));
