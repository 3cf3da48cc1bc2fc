-- The longest lifetime, in days, of an API key of an app subscribed to the plan.
ALTER TABLE plans ADD COLUMN max_key_lifetime_days BIGINT CHECK (max_key_lifetime_days BETWEEN 1 AND 3650);
