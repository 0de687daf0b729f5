"""``devicelab profile``: where a training step's time goes, seen from outside the model.

- ``watch``: any program watched through torch's global hooks (``patches``: every change, undone in one
  ``finally``): steps from optimizer steps / ``backward()`` / top-level calls, phases (``phase_meter``,
  ``phase_patches``), per-layer times (``layer_tape``), syncs at the user's line (``sync_audit``);
- ``script``: a user's script or ``-m`` module run unchanged in this process; ``api``: ``watch()``,
  ``profile_step()`` and ``profile_program()``; ``record``: the typed ``WatchReport``; ``advice``: the
  regime and ranked advice from its measurements;
- ``layers``: per-layer shapes, parameters, MACs, time and activation statistics through module hooks
  (``hooks``), timed with ``clocks`` (CUDA events or ``perf_counter``) and read once at the end;
- ``phases``: devicelab's own step under the same watch, operators per step, GPU busy time;
- ``regime``: overhead-bound or compute/memory-bound, from devicelab's step timed at growing sizes;
- ``run``: all of the above for devicelab's workload, as one ``ProfileReport``.
"""
