"""Write a deterministic random HIDA checkpoint in the authors' Lightning layout.

For tests, benchmarks and anyone without the published weights: it has
every key the real checkpoint has (generator with its training-only parts,
a discriminator, Lightning bookkeeping), initialised the way the authors'
`init_weights` does (xavier-normal with gain 0.02, zero biases, BatchNorm
weights ~ N(1, gain), DCN weights keeping DCNv2's uniform init, ACON p1/p2
~ N(0, 1)), drawn from one seeded generator so a seed always gives the
same tensors.

    python -m hida_rt.random_weights -o hida_random.ckpt [--seed 0] [--gain 0.02]
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Sequence

import torch

from .checkpoint import LIGHTNING_PREFIX
from .cli import atomic_path, check_writable, prog_name, run_cli
from .errors import InputError
from .model.random_init import AUTHORS_GAIN, random_generator_state

# A PatchGAN discriminator (photo + sketch in): present in the real file, ignored by the loader.
DISCRIMINATOR = (("model.0", 4, 64), ("model.2", 64, 128), ("model.5", 128, 256),
                 ("model.8", 256, 512), ("model.11", 512, 1))
DISCRIMINATOR_PREFIX = "Discrimanator."  # sic: the authors' spelling


def random_lightning_checkpoint(seed: int = 0, gain: float = AUTHORS_GAIN) -> dict:
    state = {LIGHTNING_PREFIX + k: v for k, v in random_generator_state(seed, gain).items()}
    gen = torch.Generator().manual_seed(seed + 1)
    for name, cin, cout in DISCRIMINATOR:
        w = torch.nn.init.xavier_normal_(torch.empty(cout, cin, 4, 4), gain=gain, generator=gen)
        state[f"{DISCRIMINATOR_PREFIX}{name}.weight"] = w
        state[f"{DISCRIMINATOR_PREFIX}{name}.bias"] = torch.zeros(cout)
    return {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": "1.9.0",
        "state_dict": state,
        "loops": {},
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
        "hyper_parameters": {"note": f"hida_rt random checkpoint, seed {seed}, gain {gain}"},
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("random_weights"),
        description="Write a deterministic random HIDA checkpoint in the published Lightning layout "
                    "(or as a plain generator state dict), for tests and benchmarks without the real weights.",
        epilog="Examples:\n"
               "  hida-rt random-weights -o hida_random.ckpt    # the authors' init: its sketches are flat grey\n"
               "  hida-rt random-weights -o hida_spread.ckpt --gain 1.0   # sketches with visible (random) structure",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write (e.g. hida_random.ckpt)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); a seed always gives the same tensors")
    p.add_argument("--gain", type=float, default=AUTHORS_GAIN,
                   help=f"xavier-normal gain of the conv weights (default {AUTHORS_GAIN}, the authors' init)")
    p.add_argument("--plain", action="store_true", help="write a plain generator state dict instead of a Lightning .ckpt")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.gain < math.inf:
        raise InputError(f"--gain must be a positive finite number, got {args.gain}")
    if not 0 <= args.seed < 2**63:
        raise InputError(f"--seed must be in 0 .. 2**63-1, got {args.seed}")
    check_writable(args.output)
    t0 = time.perf_counter()
    obj = random_generator_state(args.seed, args.gain) if args.plain else random_lightning_checkpoint(args.seed, args.gain)
    with atomic_path(args.output) as tmp, open(tmp, "wb") as f:
        # Through a file object, the archive's inner name is fixed ("archive"), so a
        # seed gives byte-identical files wherever it is written.
        torch.save(obj, f)
    sd = obj if args.plain else obj["state_dict"]
    gen = {k: v for k, v in sd.items() if args.plain or k.startswith(LIGHTNING_PREFIX)}
    n = sum(v.numel() for v in gen.values() if v.is_floating_point())
    extra = "" if args.plain else f" (+{len(sd) - len(gen)} discriminator tensors)"
    print(f"wrote {args.output}: {'plain state dict' if args.plain else 'Lightning checkpoint'}, "
          f"{len(gen)} generator tensors{extra}, {n / 1e6:.1f} M generator parameters, seed {args.seed}, gain {args.gain} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.random_weights"))
