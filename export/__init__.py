"""Exporters: ONNX, graph passes, TensorRT and AOTInductor packaging (installed as hida_rt.export)."""
from hida_rt.checkout import require_same_checkout

require_same_checkout(__name__, __file__)
