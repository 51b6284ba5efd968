"""Lets `python -m bot` run the kefu command."""

from bot.cli import main

main()
