"""When speech becomes an utterance: the trigger stage (push-to-talk, voice, both), its voice detector, the hotkey."""
