"""The model factory: everything that writes models_onnx/. Needs the export extra (torch)."""
