"""Exporters: ONNX, graph passes, TensorRT and AOTInductor packaging (installed as hida_rt.export)."""
