"""The runtime: CLI, recognizers, audio, triggers and the daemon. No torch, no NeMo."""
