"""Speech to emotion: the ONNX emotion recognizer and the hysteresis that steadies its color on partials."""
