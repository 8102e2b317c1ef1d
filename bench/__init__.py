"""docinbox benchmark suite (scripts/bench)."""
