"""What the tests share: a clock the test moves, simulated agents, and helpers for a collector under test."""
