"""The fieldpost agent: runs on client PCs, collects checks on a schedule and uploads them."""
