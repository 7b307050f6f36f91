"""The eager HIDA generator: the reference every backend is measured against."""
from .generator import SIZE_MULTIPLE, HIDAGenerator, full_shapes, inference_shapes

__all__ = ["HIDAGenerator", "SIZE_MULTIPLE", "full_shapes", "inference_shapes"]
