"""The launch recorder the kernel tests use: hida_rt.kernels.launch_recorder (shared with the SASS report)."""
from hida_rt.kernels.launch_recorder import (BACKEND_CASES, KERNEL_MODULES, Launch, backend_kernels,  # noqa: F401
                                             fused_launches, gpu_host_launches)
