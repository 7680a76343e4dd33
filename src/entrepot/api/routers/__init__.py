"""One router per noun; each module exposes ``router``."""

__all__: list[str] = []
