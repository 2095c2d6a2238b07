"""The running service: the daemon, its controller, tray, caption history, events log and instance lock."""
