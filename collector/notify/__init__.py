"""Notification delivery: plain-text alert and digest messages, sent through apprise to any channel URL."""
