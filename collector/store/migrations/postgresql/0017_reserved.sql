-- Reserved for another slice of this round, which adds this migration number; kept so the numbering has no gap
-- (the lead replaces this file at the merge). A no-op statement: asyncpg refuses a script of comments only.
SELECT 1;
