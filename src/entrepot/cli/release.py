"""`entrepot release`: anonymized and DP-synthetic rows made for one consumer.

The dataset's provider plans (the generalization and the risk, before anything is
made), creates, synthesizes and revokes releases; the consumer they were made for
lists them and reads them over Delta Sharing (`entrepot share profile`). Every command
runs against the logged-in server or, logged out, on the local node.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from entrepot._numbers import MAX_EPSILON, MIN_EPSILON
from entrepot.cli._common import As, Home, Json, console, emit, err_console, esc, session, table

release_app = typer.Typer(
    help="Anonymized (k-anonymity, l-diversity, t-closeness) and DP-synthetic releases.",
    no_args_is_help=True,
)

Dataset = Annotated[str, typer.Argument(help="The dataset, as provider/dataset.")]
For = Annotated[str, typer.Option("--for", help="The consumer organization it is made for.")]
Release = Annotated[str, typer.Argument(help="The release, e.g. R-1.")]
K = Annotated[
    int | None,
    typer.Option("--k", min=1, help="Units per class, at least (default: the policy's k_min)."),
]
L = Annotated[
    int | None,
    typer.Option("--l", min=1, help="Sensitive values per class (default: the policy's l_min)."),
]
T = Annotated[
    float | None,
    typer.Option(
        "--t", min=0, max=1, help="t-closeness, total variation (default: the policy's t_max)."
    ),
]
Suppress = Annotated[
    float | None,
    typer.Option(
        "--max-suppression",
        min=0,
        max=1,
        help="Largest share of rows dropped (default: the policy's).",
    ),
]
Sensitive = Annotated[
    str | None,
    typer.Option("--sensitive", help="The column l and t hold on (default: the policy's first)."),
]
Pseudonyms = Annotated[
    list[str] | None,
    typer.Option(
        "--pseudonym",
        help="Keep this identifier column as a pseudonym of this release alone (repeatable).",
    ),
]


def _spec(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None and v != []}


def _render_report(report: dict[str, Any]) -> None:
    if "generalization" in report:
        # The losses and the search are the provider's figures (a consumer's report has none).
        loss = report.get("information_loss")
        head = ["column", "generalized to", *(["loss"] if loss else [])]
        rows = [
            [g["column"], g["generalized_to"], *([f"{g['loss']:.3f}"] if loss else [])]
            for g in report["generalization"]
        ]
        console.print(table("Generalization", head, rows))
        risk = report["risk"]
        classes = report["classes"]
        search = report.get("search")
        lines = [
            f"rows released: {report['rows_released']:,}",
            *(
                [f"rows suppressed: {report['rows_suppressed']:,} of {report['rows_in']:,}"]
                if "rows_in" in report
                else []
            ),
            *([f"information loss ({esc(loss['metric'])}): {loss['loss']:.4f}"] if loss else []),
            f"equivalence classes: {classes['count']:,} (smallest {classes['smallest_units']} "
            f"units, median {classes['median_units']:g})",
            f"prosecutor risk: highest {risk['prosecutor']['highest']:.3f}, average "
            f"{risk['prosecutor']['average']:.3f}, records at risk "
            f"{risk['prosecutor']['records_at_risk']:.1%}",
            f"journalist risk: highest {risk['journalist']['highest']:.3f}; "
            f"marketer risk: {risk['marketer']:.3f}",
            *(
                [
                    f"search: {search['evaluated']} of {search['lattice_nodes']} "
                    "lattice nodes evaluated"
                ]
                if search
                else []
            ),
            *(
                [
                    f"pseudonyms: {esc(', '.join(report['pseudonyms']['columns']))}"
                    + (" (linking each unit's rows)" if report["pseudonyms"]["links_units"] else "")
                ]
                if "pseudonyms" in report
                else []
            ),
        ]
        console.print("\n".join(lines))
        histogram = [[h["units"], h["classes"]] for h in classes["histogram"]]
        console.print(table("Class sizes", ["units", "classes"], histogram))
        if report.get("drivers"):
            drivers = [
                [d["column"], d["distinct_values"], f"{d['records_rare_alone']:.1%}"]
                for d in report["drivers"]
            ]
            console.print(
                table("What drives the risk", ["column", "values", "rare alone"], drivers)
            )
    else:
        console.print(f"method: {esc(report.get('method', ''))}")
        console.print(f"tree: {esc(', '.join('-'.join(e) for e in report.get('tree', [])))}")
        fidelity = report.get("fidelity")
        if fidelity:
            console.print(
                f"fidelity (total variation): 1-way mean {fidelity['one_way_mean']:.3f}, "
                f"2-way mean {fidelity['two_way_mean']:.3f}"
            )


def _render(data: dict[str, Any]) -> None:
    share = data["share"]
    console.print(
        f"[bold]{esc(data['release'])}[/] {esc(data['kind'])} release of "
        f"{esc(data['dataset'])} v{data['version']} for {esc(data['consumer'])}: "
        f"{data['rows']:,} rows, ε {data['epsilon']:g}, {esc(data['state'])}"
    )
    console.print(
        f"Delta Sharing table: {esc(share['share'])}.{esc(share['schema'])}.{esc(share['table'])}"
    )
    if data["revoked_at"]:
        # The reason is shown to the release's provider and the node's operators alone.
        reason = data["revoked_reason"]
        console.print(
            f"revoked by {esc(data['revoked_by'] or '')} at {esc(data['revoked_at'])}"
            + (f": {esc(reason)}" if reason else "")
        )
    _render_report(data["report"])


@release_app.command("plan")
def plan(
    dataset: Dataset,
    for_: For,
    k: K = None,
    l: L = None,  # noqa: E741
    t: T = None,
    max_suppression: Suppress = None,
    sensitive: Sensitive = None,
    pseudonym: Pseudonyms = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show the generalization an anonymized release would use, its information loss and
    its re-identification risk, before anything is made or charged.

    Example: entrepot release plan riverside-hospitals/outpatient-visits --k 10 --l 3
    --pseudonym patient_id --for lanshan-health-bureau --as riverside-hospitals
    """
    spec = _spec(
        k=k,
        l=l,
        t=t,
        max_suppression=max_suppression,
        sensitive=sensitive,
        pseudonyms=pseudonym,
    )
    with err_console.status("searching the generalization lattice…"), session(home, as_) as c:
        data = c.release_plan(dataset, for_, kind="anonymized", **spec)
    emit(data, as_json, lambda: _render_report(data["report"]))


@release_app.command("create")
def create(
    dataset: Dataset,
    for_: For,
    k: K = None,
    l: L = None,  # noqa: E741
    t: T = None,
    max_suppression: Suppress = None,
    sensitive: Sensitive = None,
    pseudonym: Pseudonyms = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Make an anonymized release for a consumer whose grant's purpose allows rows.

    Example: entrepot release create riverside-hospitals/outpatient-visits --k 10 --l 3
    --pseudonym patient_id --for lanshan-health-bureau --as riverside-hospitals
    """
    spec = _spec(
        k=k,
        l=l,
        t=t,
        max_suppression=max_suppression,
        sensitive=sensitive,
        pseudonyms=pseudonym,
    )
    with err_console.status("making the release…"), session(home, as_) as client:
        data = client.release_create(dataset, for_, kind="anonymized", **spec)
    emit(data, as_json, lambda: _render(data))


@release_app.command("synth")
def synth(
    dataset: Dataset,
    for_: For,
    epsilon: Annotated[
        float,
        typer.Option(
            "--epsilon",
            min=MIN_EPSILON,
            max=MAX_EPSILON,
            help="ε spent, from the grant and the dataset's cap.",
        ),
    ],
    rows: Annotated[
        int | None,
        typer.Option("--rows", min=1, help="Synthetic rows (default: the model's noisy total)."),
    ] = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Make a differentially private synthetic release (MST-style marginals, OpenDP).

    Example: entrepot release synth riverside-hospitals/outpatient-visits --epsilon 2
    --rows 100000 --for lanshan-health-bureau --as riverside-hospitals
    """
    with err_console.status("synthesizing…"), session(home, as_) as client:
        data = client.release_create(
            dataset, for_, kind="synthetic", **_spec(epsilon=epsilon, rows=rows)
        )
    emit(data, as_json, lambda: _render(data))


@release_app.command("list")
def list_(
    revoked: Annotated[bool, typer.Option("--revoked", help="Only revoked releases.")] = False,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List releases: a provider's of its datasets, a consumer's made for it.

    Example: entrepot release list --as lanshan-health-bureau
    """
    with session(home, as_) as client:
        data = client.releases(state="revoked" if revoked else None)
    rows = [
        [
            r["release"],
            r["kind"],
            r["dataset"],
            r["version"],
            r["consumer"],
            r["rows"],
            f"{r['epsilon']:g}",
            r["state"],
            ".".join(r["share"].values()),
        ]
        for r in data
    ]
    head = ["release", "kind", "dataset", "version", "consumer", "rows", "ε", "state", "table"]
    emit(
        data,
        as_json,
        lambda: console.print(table("Releases", head, rows) if rows else "no releases"),
    )


@release_app.command("show")
def show(release: Release, as_: As = None, home: Home = None, as_json: Json = False) -> None:
    """Show a release with its report.

    Example: entrepot release show R-1 --as riverside-hospitals
    """
    with session(home, as_) as client:
        data = client.release_show(release)
    emit(data, as_json, lambda: _render(data))


@release_app.command("revoke")
def revoke(
    release: Release,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why: kept with the release for its provider and the node's operators, "
            "never logged.",
        ),
    ] = "",
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Stop a release at once: its consumer can no longer read it. The log says that it
    was revoked and by whom; the reason stays with the release.

    Example: entrepot release revoke R-1 --reason "consent withdrawn" --as riverside-hospitals
    """
    with session(home, as_) as client:
        data = client.release_revoke(release, reason)
    emit(data, as_json, lambda: console.print(f"[yellow]revoked[/] {esc(data['release'])}"))


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")
