"""The --ray options of python -m hida_rt.serve, and the step from them to ray_deployment (free of Ray itself).

Nothing here imports Ray: only run_on_ray does, and only when --ray was given.
"""
from __future__ import annotations

import argparse
import math

from ..errors import InputError

RAY_ONLY = ("replicas", "min_replicas", "max_replicas", "target_ongoing_requests", "cpus_per_replica",
            "gpus_per_replica", "address")


def add_ray_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "Ray Serve (--ray)",
        "The same service as a Ray Serve deployment: Ray's HTTP proxy listens on --host/--port and spreads "
        "requests over replicas, one backend each, batched by Ray Serve. Needs the ray extra.")
    g.add_argument("--ray", action="store_true",
                   help="serve on Ray Serve: a new local Ray instance, or the cluster at --address / $RAY_ADDRESS")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join (auto, or HOST:PORT of the head; default: $RAY_ADDRESS, else start a "
                        "local instance)")
    g.add_argument("--replicas", type=int, default=None,
                   help="replicas (default 1); with --max-replicas, the count to start with")
    g.add_argument("--min-replicas", type=int, default=None,
                   help="autoscaling: fewest replicas (default 1; needs --max-replicas)")
    g.add_argument("--max-replicas", type=int, default=None,
                   help="autoscaling: most replicas; giving it turns Ray Serve's autoscaling on")
    g.add_argument("--target-ongoing-requests", type=float, default=None,
                   help="autoscaling: requests in progress per replica that Ray Serve aims at (default --max-batch)")
    g.add_argument("--cpus-per-replica", type=float, default=None,
                   help="CPUs each replica reserves; its backend runs that many threads, rounded (default 1)")
    g.add_argument("--gpus-per-replica", type=float, default=None,
                   help="GPUs each replica reserves (default 1 when the backend runs on a GPU: --device cuda, "
                        "--backend tensorrt, or a GPU on this machine with --backend auto; else 0)")


def check_ray_args(args: argparse.Namespace) -> None:
    """One-line InputError for a Ray option without --ray."""
    if not args.ray:
        given = [o for o in RAY_ONLY if getattr(args, o) is not None]
        if given:
            raise InputError(f"--{given[0].replace('_', '-')} applies only with --ray")
        return
    if getattr(args, "grpc_port", None) is not None:
        raise InputError("--grpc-port is not available with --ray: Ray Serve's HTTP proxy serves the Open "
                         "Inference Protocol's REST routes (/v2/...); for gRPC run the service without --ray")
    for o in ("cpus_per_replica", "gpus_per_replica", "target_ongoing_requests"):
        v = getattr(args, o)
        if v is not None and not math.isfinite(v):
            raise InputError(f"--{o.replace('_', '-')} must be a finite number")


def backend_on_gpu(args: argparse.Namespace) -> bool:
    """Whether the backend the options name runs on a GPU (then each replica reserves one)."""
    device = (args.device or "auto").lower()
    if device.startswith("cuda") or args.backend == "tensorrt" or args.engine:
        return True
    if device != "auto" or args.backend not in ("auto", "eager", "triton"):
        return False
    import torch

    return torch.cuda.is_available()


def run_on_ray(args: argparse.Namespace, settings, v2=None) -> int:
    """Deploy the service on Ray Serve as the options say, and serve until SIGTERM / Ctrl-C.
    v2: the Open Inference Protocol model (v2_model.V2Model) whose REST routes every replica serves."""
    from ..backends import prepare
    from .ray_deployment import ReplicaSpec, Scaling, serve_on_ray

    gpus = args.gpus_per_replica if args.gpus_per_replica is not None else (1.0 if backend_on_gpu(args) else 0.0)
    cpus = args.cpus_per_replica if args.cpus_per_replica is not None else 1.0
    scaling = Scaling(replicas=args.replicas or 1, min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                      target_ongoing_requests=args.target_ongoing_requests, cpus=cpus, gpus=gpus).check()
    backend, onnx, dtype = args.backend, args.onnx, None
    recheck = getattr(args, "recheck", False)
    if not gpus:
        # Settled once, here: the replicas would otherwise each export the ONNX file at the same time.
        # With GPU replicas their machines decide (this one may have no GPU).
        backend, options = prepare(args.backend, args.weights, settings.size, settings.size, progress=True,
                                   device=args.device, onnx=args.onnx, engine=args.engine, recheck=recheck)
        onnx, dtype = options["onnx"], options.get("dtype")
    spec = ReplicaSpec(settings=settings, weights=str(args.weights), backend=backend, device=args.device, onnx=onnx,
                       engine=args.engine, threads=max(1, round(cpus)), v2=v2, dtype=dtype,
                       recheck=recheck and bool(gpus))
    return serve_on_ray(settings, spec, scaling, address=args.address,
                        announce=lambda line: print(line, flush=True))
