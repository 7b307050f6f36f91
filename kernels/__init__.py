"""Triton kernels for HIDA (installed as hida_rt.kernels), each with a torch reference in hida_rt.model.ops."""
