import os
import tempfile

from tests.xla_flags import xla_flags

# Tests see 8 CPU devices so sharding code paths run here too, and compile cheaply (tests/xla_flags.py).
os.environ.setdefault("XLA_FLAGS", xla_flags(8))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One XLA compilation cache for the session: the pytest workers and the `python -m mmjax`
# subprocesses the tests start inherit it, so the many tests that run the same small experiment
# compile its programs once (a CLI run of mae_digits: 32 s cold, 15 s warm). Fresh per session.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="mmjax-tests-xla-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
