"""Running jobs: plan, queue, backends, state rebuilt from run folders, collect and export."""
