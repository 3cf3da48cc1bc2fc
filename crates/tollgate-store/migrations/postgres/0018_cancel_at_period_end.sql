-- A cancellation the subscriber asked to take effect at the end of the billing period:
-- billing stops charging after that period and the close cancels the subscription then.
ALTER TABLE subscriptions ADD COLUMN cancel_requested_at TIMESTAMPTZ;
