"""Transport helpers shared by sinks and runtime: HTTP posts and atomic file writes."""
