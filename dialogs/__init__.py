"""kefu's dialog domain: content loading and the engine. Pure code, no I/O beyond reading content."""
