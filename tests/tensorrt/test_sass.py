"""Machine code of every kernel configuration, for every architecture CI holds: it assembles and never spills.

Every configuration the triton backend launches (testutils.kernel_launches,
at each batch and size the GPU session runs) and every TensorRT plugin
configuration of the FP16 and FP32 engines (the graph passes' plugin nodes),
compiled by Triton for sm_80, sm_89, sm_90 and sm_120 and assembled with the
ptxas Triton itself uses for that arch (hida_rt.kernels.sass, the report
`python -m hida_rt.kernels.sass` prints); sm_90 also with Triton 3.6, the
GPU image's. Any assembly error or any byte of spill fails.

Here, beside the engine fixtures, because the plugin configurations come
from the TensorRT ONNX the graph passes make (`trt_models`). The builds
themselves run from the session's start (testutils.early_jobs), on weights
of their own; they count only if their configurations equal these.
"""
from __future__ import annotations

import pytest
from testutils import early_jobs
from testutils.kernel_launches import backend_kernels
from testutils.sass_job import case_rows
from testutils.tritons import python_for, sass_cases

from hida_rt.kernels import _aot, _ptxas, sass

CASES = sass_cases()


@pytest.fixture(scope="module")
def project_kernels(spread_model, trt_models) -> dict[str, list[_aot.AotKernel]]:
    return {"triton": backend_kernels(spread_model),
            "tensorrt": sass.engine_kernels([model for model, _ in trt_models.values()])}


@pytest.fixture(scope="module")
def all_kernels(project_kernels) -> list[_aot.AotKernel]:
    return list({k.config_key(): k for ks in project_kernels.values() for k in ks}.values())


@pytest.fixture(scope="module")
def sass_rows(project_kernels, all_kernels) -> dict[tuple, list[sass.Row]]:
    """(triton, arch) -> report rows (testutils.sass_job.case_rows); computed by the job started with the
    session (testutils.early_jobs) when it ran, once its configurations are found to be exactly these."""
    pythons = {which: python_for(which) for which, _ in CASES}
    early = early_jobs.sass_result(timeout=1800)
    if early is not None:
        assert sorted(early["keys"]) == sorted(k.config_key() for k in all_kernels), \
            "the SASS job built other kernel configurations than this session's"
        return {case: [sass.Row(**r) for r in early["cases"][f"{case[0]}/{case[1]}"]] for case in CASES}
    return case_rows(project_kernels, all_kernels, CASES, pythons.__getitem__)


def test_the_report_covers_both_hosts(project_kernels):
    assert {k.name for k in project_kernels["tensorrt"]} >= {"deform_conv_kernel", "ida_row_kernel",
                                                             "meta_acon_apply_kernel"}
    assert any(k.name == "deform_conv_kernel" and k.constexprs["SPLIT_K"] > 1 for k in project_kernels["triton"])


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"{'triton-' + w if w != 'installed' else 'triton'}-sm_{a}"
                                             for w, a in CASES])
def test_every_configuration_assembles_without_spills(case, sass_rows, all_kernels):
    rows = sass_rows[case]
    assert len(rows) == len(all_kernels)
    problems = [f"{r.kernel} {r.dtype} {r.config} ({r.used_by}): "
                + (f"ptxas error: {r.error}" if r.error else
                   f"{r.registers} registers, spill {r.spill_stores} B stores / {r.spill_loads} B loads")
                for r in rows if r.error or r.spills]
    assert not problems, f"sm_{case[1]}:\n" + "\n".join(problems)
    assert all(r.registers > 0 and r.warps_per_sm >= 4 for r in rows), "a kernel that cannot keep 4 warps resident"


def test_occupancy_follows_the_arch_limits():
    # 255 registers x 128 threads: 256 x 32 x 4 = 32 K registers a block, 2 blocks of 64 K.
    assert sass.occupancy(90, 255, 128, 0) == (8, "registers")
    assert sass.occupancy(90, 32, 128, 0) == (64, "warps")
    # sm_86 keeps at most 16 blocks: 16 one-warp blocks.
    assert sass.occupancy(86, 16, 32, 0) == (16, "blocks")
    # 100 KB of shared memory on sm_89 (99 KB a block at most): one block.
    assert sass.occupancy(89, 32, 128, 60 * 1024) == (4, "shared memory")
    assert sass.occupancy(80, 40, 256, 0) == (48, "registers")  # 40 x 32 x 8 = 10 K: 6 blocks


def test_ptxas_log_is_read():
    log = ("ptxas info    : Compiling entry function 'k' for 'sm_90a'\n"
           "ptxas info    : Function properties for k\n"
           "    16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
           "ptxas info    : Used 168 registers, used 1 barriers, 2048 bytes smem\n")
    assert _ptxas.parse(log) == {"registers": 168, "stack": 16, "spill_stores": 8, "spill_loads": 12,
                                 "shared": 2048}
