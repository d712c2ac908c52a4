"""The Textual console: ``QBConsoleApp`` and its sections."""

from qbconsole.tui.app import QBConsoleApp

__all__ = ["QBConsoleApp"]
