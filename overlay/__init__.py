"""The caption overlay window (PySide6): knows captions and the palette, nothing about audio."""
