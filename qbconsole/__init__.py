"""qbconsole: the launch console for the QuickBid auction platform."""

__version__ = "0.1.0"
