"""Pure logic: no Flask, Celery, SQL or provider imports (import-linter keeps it so)."""
