-- Price books stored on their own, for term sheets that reference them
-- (`pricing.ref: {id, sha256}`) instead of carrying them inline. Content-addressed and
-- immutable: a new price is a new version with a new hash.
CREATE TABLE price_books (
    org_id TEXT NOT NULL REFERENCES orgs (id),
    sha256 TEXT NOT NULL,
    book_id TEXT NOT NULL,
    version TEXT NOT NULL,
    document JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, sha256),
    UNIQUE (org_id, book_id, version)
);
