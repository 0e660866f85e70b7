"""Notifications, in one place: the stages (pipeline), the messages (render) and apprise delivery (deliver)."""
