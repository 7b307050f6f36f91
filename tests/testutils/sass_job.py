"""python tests/testutils/sass_job.py RESULT.json: what tests/tensorrt/test_sass.py checks, computed as a
job started with the session (testutils.early_jobs).

Every kernel configuration of the project (hida_rt.kernels.sass.project_kernels: the triton backend's
launches and the FP16/FP32 engines' plugin nodes, from freshly initialised weights, since the network's
structure alone decides them), built by each case's Triton for its arch and assembled with that Triton's
ptxas. RESULT: {"keys": [config key of each kernel], "cases": {"which/arch": [sass.Row as a dict]}}. The
test compares the keys with its own session's configurations before it trusts the rows.
"""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testutils.tritons import python_or_none, sass_cases  # noqa: E402

from hida_rt.kernels import _aot, sass  # noqa: E402


def main(result: Path) -> int:
    groups = sass.project_kernels()
    kernels = list({k.config_key(): k for ks in groups.values() for k in ks}.values())

    def one(case):
        which, arch = case
        python = python_or_none(which)
        if python is None:  # the test skips (or fails in CI) this case itself
            return case, None
        built = _aot.build_isolated(kernels, arch=arch, python=python, assemble=True, timeout=1800)
        return case, [asdict(r) for r in sass.rows(groups, {arch: built}, kernels)]

    with ThreadPoolExecutor(max_workers=2) as pool:  # two build processes at a time: CI machines have 2 cores
        cases = {f"{which}/{arch}": rows for (which, arch), rows in pool.map(one, sass_cases())}
    result.write_text(json.dumps({"keys": [k.config_key() for k in kernels], "cases": cases}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
