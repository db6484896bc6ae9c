"""The experiment matrix and everything rendered from it (LLaMA-Factory YAML, dataset_info, DeepSpeed)."""
