"""The `entrepot` command line: one module per noun, no logic of its own."""


def main() -> None:
    """The ``entrepot`` command: start with the collector running rarely, then run the CLI."""
    from entrepot.cli import _collector

    _collector.starting()
    from entrepot.cli.app import main as run

    run()
