"""Models on disk and in memory: the manifest registry (sha256-checked) and the ONNX Runtime session factory."""
