"""Speech to text: the one recognizer protocol (`recognizer`) and its families, `whisper/` and `nemo/`."""
