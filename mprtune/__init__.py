"""mprtune: one experiment matrix -> LLaMA-Factory configs, runs, and an honest comparison."""

__version__ = "0.1.0"
