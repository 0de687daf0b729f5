"""Fast paths: the same training arithmetic as the eager step, with less overhead.

``cpu_fast_runner(work, config)`` returns a ``Runner`` that trains devicelab's MLPs in a fused numba
kernel on the CPU, or None and the reason the eager step stays. numba is imported only when a runner
is built, so ``import devicelab`` and ``devicelab --help`` do not pay for it.
"""

from devicelab.fast.cpu_runner import NumbaRunner, cpu_fast_runner

__all__ = ["NumbaRunner", "cpu_fast_runner"]
