"""`entrepot demo`: build a seeded demo exchange, show each step, then serve it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from entrepot.cli._common import Home, Json, console, emit, esc, settings, table
from entrepot.cli.query import render_answer
from entrepot.cli.serve import serve

if TYPE_CHECKING:
    from entrepot.demo.scenario import Step


def _generated(data: dict[str, Any]) -> None:
    rows = [
        [f["provider"], f["file"], f["standard"], f["encoding"], f"{f['rows']:,}", f["defects"]]
        for f in data["files"]
    ]
    console.print(
        table(
            f"{data['people']:,} synthetic people, seed {data['seed']}, in {data['directory']}",
            ["provider", "raw file", "standard", "encoding", "rows", "defects injected"],
            rows,
        )
    )
    provider = {f["file"]: f["provider"] for f in data["files"]}
    console.print(
        table(
            "People two providers share (the generator's answer key for private joins)",
            ["provider", "provider", "people"],
            [
                [provider[a], provider[b], f"{pair['people']:,}"]
                for pair in data["shared_people"]
                for a, b in [pair["files"]]
            ],
        )
    )


def _node(data: dict[str, Any]) -> None:
    verb = "reusing" if data["reused"] else "created"
    console.print(
        f"[green]{verb}[/] node at {esc(data['home'])}\n  public key {esc(data['node_key'])}"
    )


def _providers(data: dict[str, Any]) -> None:
    for provider in data["added"]:
        console.print(f"[green]registered[/] {provider['slug']} ({provider['name']})")
    for slug in data["existing"]:
        console.print(f"[dim]already registered[/] {slug}")


def _published(data: dict[str, Any]) -> None:
    datasets = data["datasets"]
    console.print(
        table(
            "Published",
            ["dataset", "version", "rows read", "published", "quarantined", "defects caught"],
            [
                [
                    d["dataset"],
                    d["version"],
                    f"{d['rows_read']:,}",
                    f"{d['rows_published']:,}",
                    f"{d['rows_quarantined']:,}",
                    Text("all", style="green")
                    if d["all_defects_caught"]
                    else Text("not all", style="red"),
                ]
                for d in datasets
            ],
        )
    )
    console.print(
        table(
            "Quarantined, and why",
            ["dataset", "rule", "column", "rows"],
            [
                [d["dataset"], v["rule"], v["column"], f"{v['count']:,}"]
                for d in datasets
                for v in d["violations"]
            ],
        )
    )


def _catalog(data: dict[str, Any]) -> None:
    console.print(
        table(
            f'Catalog search "{data["search"]}"',
            ["dataset", "title", "provider", "standard"],
            [[h["dataset"], h["title"], h["provider"], h["standard"]] for h in data["hits"]],
        )
    )
    console.print(f"{len(data['datasets'])} datasets in the catalog")


def _access(data: dict[str, Any]) -> None:
    if data["consumer_created"]:
        console.print(f"[green]created[/] consumer {data['consumer']} ({data['consumer_name']})")
    console.print(
        f"{data['dataset']}: provider set its policy (digest {data['policy_digest'][:12]}…)\n"
        f"{data['request']} for {data['purpose']} → [green]{data['grant']}[/]"
        f"{' (granted before)' if data['grant_reused'] else ''}: "
        f"ε {data['epsilon']:g} until {data['valid_until']}",
        highlight=False,
    )


def _query(data: dict[str, Any]) -> None:
    console.print(f"[bold]$[/] {esc(data['sql'])}", highlight=False, soft_wrap=True)
    if not data["answered"]:
        refusal = data["refusal"]
        console.print(f"[yellow]refused[/] {esc(refusal['message'])}\n  {esc(refusal['hint'])}")
        return
    render_answer(data["result"], most=data["rows_shown"])
    console.print(f"signed receipt written to {esc(data['receipt'])}")
    refused = data["refused_query"]
    console.print(f"[bold]$[/] {esc(refused['sql'])}", highlight=False, soft_wrap=True)
    if refused["refused"]:
        console.print(f"[yellow]refused[/] ({esc(refused['rule'])}): {esc(refused['message'])}")


def _join(data: dict[str, Any]) -> None:
    console.print(f"[bold]$[/] {esc(data['sql'])}", highlight=False, soft_wrap=True)
    if not data["answered"]:
        refusal = data["refusal"]
        console.print(f"[yellow]refused[/] {esc(refusal['message'])}\n  {esc(refusal['hint'])}")
        return
    render_answer(data["result"], most=data["rows_shown"])


def _audit(data: dict[str, Any]) -> None:
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(data["kinds"].items()))
    console.print(
        f"{data['entries']} entries ({kinds}); signed head root {data['root'][:16]}… "
        f"at {data['head_time']}\n[green]verified[/] every entry and head"
        + (
            "; the receipt's inclusion proof checks out "
            f"(entry {data['receipt_verified_at_index']})"
            if data["receipt_verified_at_index"] is not None
            else ""
        ),
        highlight=False,
    )
    console.print(
        table(
            "Latest entries",
            ["#", "kind", "actor", "dataset", "outcome", "ε"],
            [
                [e["index"], e["kind"], e["actor"], e["dataset"], e["outcome"], e["epsilon"]]
                for e in data["recent"]
            ],
        )
    )


def _next(data: dict[str, Any]) -> None:
    for command in data["commands"]:
        console.print(f"  [bold]$[/] {command}", highlight=False, soft_wrap=True)
    console.print("While it is served (as the health bureau, whose token the demo kept):")
    for line in data["served"]:
        console.print(f"  {line}", highlight=False, soft_wrap=True)


# How each step's data is shown to people; a step without one is shown as its title only.
_RENDER: dict[str, Callable[[dict[str, Any]], None]] = {
    "generate": _generated,
    "node": _node,
    "providers": _providers,
    "publish": _published,
    "catalog": _catalog,
    "access": _access,
    "query": _query,
    "join": _join,
    "audit": _audit,
    "next": _next,
}


class _RichReporter:
    """Step titles as rules, a progress bar per publish stage, then each step's tables."""

    def __init__(self) -> None:
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def begin(self, step: Step) -> None:
        console.rule(f"[bold]{step.title}", align="left")

    def progress(self, task: str, done: int, total: int) -> None:
        if self._bars is None:
            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=console,
            )
            self._bars.start()
        bars = self._bars
        for name, other in self._tasks.items():
            if name != task:
                bars.update(other, completed=1, total=1)
        if task not in self._tasks:
            self._tasks[task] = bars.add_task(task, total=total or None)
        bars.update(self._tasks[task], completed=done, total=total or None)

    def end(self, step: Step, data: dict[str, Any]) -> None:
        if self._bars is not None:
            for task in self._tasks.values():
                self._bars.update(task, completed=1, total=1)
            self._bars.stop()
            self._bars, self._tasks = None, {}
        render = _RENDER.get(step.name)
        if render is not None:
            render(data)


def demo(
    home: Home = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Wipe the home first (only a demo home or an empty one)."),
    ] = False,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Exit after the scenario instead of serving.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            help="Seed of the synthetic data \\[default: the demo's own].",
            show_default=False,
        ),
    ] = None,
    scale: Annotated[
        float,
        typer.Option("--scale", min=0.01, help="Data size; 1 is about 150k rows in all."),
    ] = 1.0,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to serve on \\[default: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port to serve on \\[default: 8000]."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Build a demo exchange from seeded, messy provider files, step by step.

    Generates raw files for four providers in two provinces (GBK and UTF-8, local
    codes, fen and yuan, bad rows included), registers the providers, publishes
    every file with --on-error quarantine, searches the catalog; then a health
    bureau gets a grant, runs a private query (and one the policy refuses), and the
    transparency log is verified. Finally serves the exchange on --host and --port
    (unless --no-serve). Run again without --fresh, with another --seed, to publish
    new versions into the same exchange (the same data again is the same version).
    Refuses any --home it did not build.

    Example: entrepot demo --home .demo-exchange --fresh --no-serve
    """
    from entrepot.demo import DEFAULT_SEED, run

    chosen = settings(home)
    # Served where asked: the scenario's links and the node's own address say so too.
    served = {"host": host, "port": port}
    chosen = chosen.model_copy(update={k: v for k, v in served.items() if v is not None})
    result = run(
        chosen.home,
        seed=DEFAULT_SEED if seed is None else seed,
        scale=scale,
        fresh=fresh,
        reporter=None if as_json else _RichReporter(),
        settings=chosen,
    )
    if as_json:
        emit(result.to_dict(), as_json)
    if not no_serve:
        serve(home=chosen.home, host=chosen.host, port=chosen.port)


def register(app: typer.Typer) -> None:
    app.command()(demo)
