-- Reserved for another slice of issue 22, which may add migration 0021; kept so the numbering has no gap
-- (the lead replaces this file at the merge). A no-op statement: asyncpg refuses a script of comments only.
SELECT 1;
