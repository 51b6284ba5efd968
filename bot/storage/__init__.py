"""Storage: the tables, the reads (queries), the writes of a turn, the Telegram inbox and outbox, the
connections and the schema's migrations. Nothing outside this package writes SQL."""
