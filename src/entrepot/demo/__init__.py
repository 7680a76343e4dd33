"""Seeded synthetic providers and the demo scenario."""
