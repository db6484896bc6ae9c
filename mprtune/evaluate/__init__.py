"""Base vs tuned: prediction jobs, scores with intervals, results.json and the report."""
