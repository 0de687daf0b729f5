"""``devicelab profile``: where a training step's time goes, seen from outside the model.

- ``layers``: per-layer shapes, parameters, MACs, time and activation statistics through module hooks
  (``hooks``), timed with ``clocks`` (CUDA events or ``perf_counter``) and read once at the end;
- ``phases``: forward / loss / backward / optimizer / other per step, operator launches, GPU busy time;
- ``sync_audit``: every host-device sync a loop makes (``loops``: the lesson's and devicelab's), by line;
- ``regime``: overhead-bound or compute/memory-bound, from the step timed at growing sizes;
- ``run``: all of the above for one workload, as one ``ProfileReport``.
"""
