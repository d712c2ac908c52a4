"""The QuickBid demo: a real auction platform on 127.0.0.1 and a load generator for it."""
