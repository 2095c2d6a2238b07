"""The model factory: everything that writes models_onnx/.

Whisper needs the export extra (onnx, no torch); emotion training/export and the NeMo exporter
also need the train extra (torch).
"""
