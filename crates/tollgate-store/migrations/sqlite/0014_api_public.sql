-- APIs callable without a credential or subscription (open data, status pages): not
-- authenticated, authorized, limited or metered by the gateway.
ALTER TABLE apis ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;
