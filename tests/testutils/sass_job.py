"""Every kernel configuration assembled for each (Triton, arch) case of tests/tensorrt/test_sass.py.

`case_rows` builds them (the test's fixture calls it when no early job ran); run as a script,

    python tests/testutils/sass_job.py RESULT.json

it is the job started with the session (testutils.early_jobs): every kernel configuration of the project
(hida_rt.kernels.sass.project_kernels: the triton backend's launches and the FP16/FP32 engines' plugin
nodes, from freshly initialised weights, since the network's structure alone decides them), written as
RESULT: {"keys": [config key of each kernel], "cases": {"which/arch": [sass.Row as a dict]}}. The test
compares the keys with its own session's configurations before it trusts the rows.
"""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

if not __package__:  # run as a script: make `testutils` importable as the tests see it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testutils.tritons import python_or_none, sass_cases  # noqa: E402

from hida_rt.kernels import _aot, sass  # noqa: E402


def case_rows(groups: dict, kernels: Sequence[_aot.AotKernel], cases: Sequence[tuple[str, int]],
              python_of: Callable[[str], str | None]) -> dict[tuple[str, int], list[sass.Row] | None]:
    """(which, arch) -> report rows of `kernels` built by that Triton for that arch and assembled with its
    ptxas (None where python_of gives no interpreter); one build process per case, two at a time (CI
    machines have 2 cores)."""
    def one(case):
        which, arch = case
        python = python_of(which)
        if python is None:
            return case, None
        built = _aot.build_isolated(kernels, arch=arch, python=python, assemble=True, timeout=1800)
        return case, sass.rows(groups, {arch: built}, kernels)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, cases))


def main(result: Path) -> int:
    groups = sass.project_kernels()
    kernels = list({k.config_key(): k for ks in groups.values() for k in ks}.values())
    rows = case_rows(groups, kernels, sass_cases(), python_or_none)  # a missing case: the test skips or fails it
    result.write_text(json.dumps({"keys": [k.config_key() for k in kernels],
                                  "cases": {f"{which}/{arch}": [asdict(r) for r in rs] if rs is not None else None
                                            for (which, arch), rs in rows.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
