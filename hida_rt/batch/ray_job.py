"""`python -m hida_rt.batch --ray`: Ray Data reads the photos, an actor pool sketches and writes them.

    read_binary_files (tasks, READ_CPUS each) -> map_batches(SketchActor, one backend per actor)
        -> rows {name, error} streamed back to the driver for progress and the summary

Each actor runs hida_rt.batch.job.Sketcher, the per-image work of the in-process
path, and writes its outputs itself (atomically), so writes happen in
parallel on the actors' machines; on a cluster OUTPUT must therefore be a
location every node can write (a shared folder or an object-store URI), and
the weights/ONNX/engine paths must exist on every node.

Actors get fractional CPUs: an actor pool holding every CPU slot leaves
none for Ray Data's read tasks, and the job hangs. Ray is the optional `ray`
extra and is imported only here.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from .. import errors
from ..errors import HidaError, InputError, MissingDependency, first_line
from .job import RESERVED_CPUS, Outcome, Settings, Sketcher, Task

RAY_INSTALL = 'pip install "ray[serve,data]==2.60.0"  (or the hida_rt extra: pip install "hida_rt[ray]")'
READ_CPUS = 0.25   # a read task only fetches bytes
# About one read block per backend batch (actors start on the first blocks soon), but not so many
# that a million-photo job schedules a task per eight photos.
MAX_READ_BLOCKS = 1000


def require_ray():
    """The ray module with Ray Data, or MissingDependency saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise MissingDependency(f"--ray needs Ray with Ray Data ({e}); install it with: {RAY_INSTALL}") from None
    return ray


class SketchActor:
    """A Ray Data actor: one backend, a batch of (path, bytes) rows in, one outcome row per photo out."""

    def __init__(self, settings: Settings, tasks: dict[str, Task]):
        self.sketcher = Sketcher(settings)
        self.tasks = tasks

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tasks = [self.tasks[str(p)] for p in batch["path"]]
        outcomes = self.sketcher.sketch(tasks, [bytes(b) for b in batch["bytes"]])
        return {"name": np.array([o.name for o in outcomes], dtype=object),
                "error": np.array([o.error or "" for o in outcomes], dtype=object)}


# How a HidaError raised on an actor (a bad checkpoint or ONNX file, a missing extra) ends its traceback.
# Ray passes an actor's construction error to the driver only as text (ActorDiedError keeps no cause).
_REMOTE_HIDA_ERROR = re.compile(r"^hida_rt\.errors\.(\w+): (.+)$", re.MULTILINE)


def one_line_error(e: BaseException) -> HidaError:
    """A Ray failure as one HidaError line: the HidaError an actor raised if there was one (same exit code)."""
    found = _REMOTE_HIDA_ERROR.findall(str(e))
    if found:
        kind, message = found[-1]
        error = HidaError(f"on a Ray actor: {message.strip()}")
        error.exit_code = getattr(errors, kind, HidaError).exit_code
        return error
    return HidaError(f"the Ray run failed: {first_line(e, 300)} (Ray's logs: $RAY_TMPDIR/session_latest/logs)")


def _start(ray, address: str | None) -> None:
    kwargs = {"address": address, "logging_level": logging.WARNING, "log_to_driver": False}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False   # a local instance for this run only
    try:
        ray.init(**kwargs)
    except Exception as e:  # ConnectionError, ValueError for a bad address, ...
        raise HidaError(f"cannot start or join Ray ({first_line(e, 200)})") from None


def pool_shape(cluster_cpus: float, actors: int, cpus_per_actor: float | None,
               node_cpus: float | None = None) -> tuple[float, int]:
    """(CPUs per actor, backend threads per actor) that leave room for the read tasks.

    node_cpus: the largest node's CPUs (an actor must fit on one node); default: one node, the cluster.
    """
    node_cpus = cluster_cpus if node_cpus is None else node_cpus
    if cpus_per_actor is None:
        cpus_per_actor = min((cluster_cpus - RESERVED_CPUS) / actors, node_cpus - RESERVED_CPUS)
        if cpus_per_actor <= 0:
            raise InputError(f"the Ray cluster has {cluster_cpus:g} CPU(s): too few to run actors and reads")
    if cpus_per_actor > node_cpus:
        raise InputError(f"--cpus-per-actor {cpus_per_actor:g}: no node of the Ray cluster has that many CPUs "
                         f"(the largest has {node_cpus:g})")
    if actors * cpus_per_actor + READ_CPUS > cluster_cpus:
        raise InputError(f"--actors {actors} x --cpus-per-actor {cpus_per_actor:g} leaves under {READ_CPUS} of the "
                         f"cluster's {cluster_cpus:g} CPU(s) for Ray Data's read tasks: the run would hang; "
                         f"use fewer actors or a fraction of a CPU each")
    return cpus_per_actor, max(1, round(cpus_per_actor))


def _largest_node_cpus(ray) -> float | None:
    cpus = [float(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    return max(cpus) if cpus else None


def ray_outcomes(tasks: list[Task], settings: Settings, args) -> tuple[Iterator[Outcome], str]:
    """Start (or join) Ray and the pipeline; returns the outcomes as they come, and a description."""
    ray = require_ray()
    # Ray's driver threads print errors pushed by the raylet to sys.stdout; stdout is the summary's
    # (--json), so during the Ray part it points at stderr.
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        if not args.quiet:
            where = args.address or os.environ.get("RAY_ADDRESS")
            print(f"joining Ray at {where}" if where else "starting a local Ray instance", file=sys.stderr,
                  flush=True)
        _start(ray, args.address)
        actors = args.actors or 1
        cpus, threads = pool_shape(float(ray.cluster_resources().get("CPU", 0)), actors, args.cpus_per_actor,
                                   _largest_node_cpus(ray))
    except BaseException:
        ray.shutdown()
        sys.stdout = stdout
        raise
    mode = f"ray: {actors} actor(s), {cpus:.2f} CPU(s) each"
    if args.gpus_per_actor:
        mode += f" and {args.gpus_per_actor:g} GPU(s)"
    return _stream(ray, tasks, replace(settings, threads=threads), args, actors, cpus, stdout), mode


def _stream(ray, tasks: list[Task], settings: Settings, args, actors: int, cpus: float,
            stdout) -> Iterator[Outcome]:
    import ray.data as rd
    ctx = rd.DataContext.get_current()
    ctx.enable_progress_bars = False      # the driver shows one bar of its own
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    # Ray Data logs a failed job's full traceback; the driver prints one line instead (the logs keep it).
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    try:
        ds = rd.read_binary_files([t.photo for t in tasks], include_paths=True, filesystem=settings.in_fs,
                                  num_cpus=READ_CPUS,
                                  override_num_blocks=min(MAX_READ_BLOCKS, -(-len(tasks) // args.batch_size)))
        remote = {"num_cpus": cpus}
        if args.gpus_per_actor:
            remote["num_gpus"] = args.gpus_per_actor
        ds = ds.map_batches(SketchActor, fn_constructor_kwargs={"settings": settings,
                                                                "tasks": {t.photo: t for t in tasks}},
                            batch_size=args.batch_size, batch_format="numpy",
                            compute=rd.ActorPoolStrategy(size=actors), **remote)
        for row in ds.iter_rows():
            yield Outcome(str(row["name"]), str(row["error"]) or None)
    except HidaError:
        raise
    except Exception as e:
        raise one_line_error(e) from None
    finally:
        ray.shutdown()
        sys.stdout = stdout
