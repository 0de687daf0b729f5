"""One module per CLI verb. Each has ``register(subparsers)``; heavy imports happen inside ``run``."""
