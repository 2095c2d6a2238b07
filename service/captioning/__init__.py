"""Utterances to captions: per-utterance streams, the scheduling policy, partial-caption logic, the worker thread."""
