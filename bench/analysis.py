"""What profiling found for goals the numbers miss; written by hand, printed under each result."""

ANALYSIS: dict[int, str] = {}
