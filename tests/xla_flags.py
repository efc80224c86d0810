"""The XLA flags every test process runs with: XLA's cheapest CPU compile, and a simulated device count.

Most of this suite's time is XLA compiling small programs that then run a few steps. At the lowest
backend optimization, without the fusion emitters and with one codegen split, the same programs
compile in about half the time (tests/test_mae.py's Adam steps and tests/test_vq.py's digits steps:
81 s -> 37 s on the 2-core machine) and give the same results within every tolerance the tests use.
Tests compare programs compiled the same way (a resumed run with a straight one, Pallas with XLA,
mmjax with transformers at 1e-5), so nothing they assert depends on the optimization level; the
benchmarks and the device scripts compile at XLA's defaults.

An XLA that does not know a flag aborts the process, so the flags are probed once per session in a
subprocess (`cheap_compile_flags`) and the accepted set is passed on in `MMJAX_TEST_XLA_CHEAP`.
"""

from __future__ import annotations

import os
import subprocess
import sys

CHEAP_COMPILE = (
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_cpu_parallel_codegen_split_count=1",
)
_PROBE = "import jax, jax.numpy as jnp; jax.jit(lambda x: x + 1)(jnp.ones(2)).block_until_ready()"


def _accepted(flags: tuple[str, ...]) -> bool:
    env = {**os.environ, "XLA_FLAGS": " ".join(flags), "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True).returncode == 0


def cheap_compile_flags() -> str:
    """The flags of `CHEAP_COMPILE` this XLA accepts (all, the first, or none), probed once per session."""
    if "MMJAX_TEST_XLA_CHEAP" not in os.environ:
        chosen = next((f for f in (CHEAP_COMPILE, CHEAP_COMPILE[:1]) if _accepted(f)), ())
        os.environ["MMJAX_TEST_XLA_CHEAP"] = " ".join(chosen)
    return os.environ["MMJAX_TEST_XLA_CHEAP"]


def xla_flags(devices: int | None = None) -> str:
    """`XLA_FLAGS` for a test process: the cheap compile, and `devices` simulated CPU devices if given."""
    count = [] if devices is None else [f"--xla_force_host_platform_device_count={devices}"]
    return " ".join([cheap_compile_flags(), *count]).strip()
