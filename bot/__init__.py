"""kefu's adapters to the world: storage, the terminal, Telegram and the command line."""
