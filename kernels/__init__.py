"""Triton kernels for HIDA (installed as hida_rt.kernels), each with a torch reference in hida_rt.model.ops."""
from hida_rt.checkout import require_same_checkout

require_same_checkout(__name__, __file__)
