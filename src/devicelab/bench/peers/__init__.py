"""Peer rows of ``bench speed``: the same workload trained by other frameworks, one module each
(``lightning_trainer``, ``skorch_net``, ``jax_loop``). None is a devicelab dependency: each module imports
its framework when its row runs, and ``bench speed`` says "not installed" when the import fails."""
