"""The --ray options: replica counts, autoscaling settings, what each replica reserves (no Ray started)."""
from __future__ import annotations

import pytest

pytest.importorskip("ray.serve", reason="the ray extra is not installed (pip install 'ray[serve,data]==2.60.0')")
pytest.importorskip("fastapi", reason="the serve extra (FastAPI) is not installed")

from hida_rt.errors import InputError
from hida_rt.serve.ray_deployment import Scaling, check_fits, deployment_options
from hida_rt.serve.settings import Settings


def test_fixed_replicas_reserve_their_share_and_the_app_limits():
    opts = deployment_options(Settings(max_queue=10, max_streams=2), Scaling(replicas=3, cpus=0.5).check())
    assert opts["num_replicas"] == 3 and "autoscaling_config" not in opts
    assert opts["ray_actor_options"] == {"num_cpus": 0.5}
    assert opts["max_ongoing_requests"] == 12


def test_gpu_replicas_reserve_a_gpu():
    opts = deployment_options(Settings(), Scaling(cpus=1, gpus=1).check())
    assert opts["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 1}


def test_max_replicas_turns_autoscaling_on():
    opts = deployment_options(Settings(max_batch=6), Scaling(replicas=2, min_replicas=1, max_replicas=4).check())
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 1, "initial_replicas": 2, "max_replicas": 4,
                                          "target_ongoing_requests": 6}


@pytest.mark.parametrize("scaling, message", [
    (Scaling(replicas=0), "--replicas must be at least 1"),
    (Scaling(min_replicas=2), "need --max-replicas"),
    (Scaling(min_replicas=3, max_replicas=2), "--min-replicas <= --max-replicas"),
    (Scaling(replicas=5, max_replicas=4), "outside"),
    (Scaling(max_replicas=2, target_ongoing_requests=0), "must be > 0"),
    (Scaling(cpus=0), "not both 0"),
])
def test_impossible_scaling_is_one_line(scaling, message):
    with pytest.raises(InputError, match=message):
        scaling.check()


def test_replicas_that_cannot_be_placed_locally_are_refused():
    check_fits(Scaling(replicas=2, cpus=1), {"CPU": 2.0})
    with pytest.raises(InputError, match="do not fit in this machine's 2 CPU"):
        check_fits(Scaling(replicas=3, cpus=1), {"CPU": 2.0})
    with pytest.raises(InputError, match="GPU"):
        check_fits(Scaling(replicas=1, cpus=1, gpus=1), {"CPU": 8.0})
