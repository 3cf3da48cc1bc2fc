-- Where test-mode calls (tg_test_ keys, test OAuth clients) go; empty: a mock that
-- answers from the API's OpenAPI examples.
ALTER TABLE apis ADD COLUMN sandbox_upstreams JSONB NOT NULL DEFAULT '[]';
