"""The Telegram channel: turns updates into calls on Service and Casework, and their answers into Telegram
messages; customers on one side, staff and supervisors on the other, one case between them. By audience:
customers.py, staff.py, supervisors.py; sending.py says it; bot.py joins them and runs the units."""

from bot.telegram.bot import TelegramBot
from bot.telegram.common import (CHANNEL, InboxQueue, TelegramConfigError, Throttle, Unit, UnitApplication,
                                 command_text, split_message)

__all__ = ["CHANNEL", "InboxQueue", "TelegramBot", "TelegramConfigError", "Throttle", "Unit", "UnitApplication",
           "command_text", "split_message"]
