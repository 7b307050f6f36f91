"""The eager HIDA generator: the reference every backend is measured against."""
from .generator import SIZE_MULTIPLE, HIDAGenerator, check_size, full_shapes, inference_shapes

__all__ = ["HIDAGenerator", "SIZE_MULTIPLE", "check_size", "full_shapes", "inference_shapes"]
