"""The wire shapes both doors speak: request and response bodies, one module per noun.

The API validates and answers with these models; the CLI prints the same bodies,
whether a server or the local node produced them. Both doors import this package
and the core, never each other.
"""

__all__: list[str] = []
