-- Live keys reach live subscriptions only, test keys test subscriptions only.
ALTER TABLE subscriptions ADD COLUMN mode TEXT NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));
