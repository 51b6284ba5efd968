"""Storage: the tables, the reads (queries), the writes of a turn, the Telegram inbox and outbox, the
connections and the schema's migrations. No module outside it builds SQL: it calls a named read in
queries.py, or a method of the store, inbox or outbox (other writes add and change rows through the ORM)."""
