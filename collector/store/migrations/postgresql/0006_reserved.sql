-- Reserved for issue 24's store slice, which may add migration 0006; kept so the numbering has no gap
-- (the lead replaces this file at the merge). A no-op statement: asyncpg refuses a script of comments only.
SELECT 1;
