"""What the CLI echoes cannot drive a terminal or crash the command after a change.

Names, titles, notes and reasons are refused at input when they hold control
characters; what was stored before, and text read from files (CSV cells in a
validation report), is escaped when printed. Markup brackets print as written.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from tests.vault.cli_runner import Result, run_cli
from tests.vault.visits import HEADER, visit_rows

from entrepot._text import is_unsafe
from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault import add_provider
from entrepot.vault.models import Dataset, Provider, Version

ESC = "\x1b"
# A title that clears the screen, sets the window title (OSC) and reverses the text.
HOSTILE = f"Visits{ESC}[2J{ESC}]0;owned\x07\u202eevil\x00"
REF = "riverside-hospitals/outpatient-visits"


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` that would reach a terminal raw (newlines are fine)."""
    return sorted({repr(c) for c in text if is_unsafe(c) and c != "\n"})


def assert_clean(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert raw_controls(result.stdout) == []
    assert raw_controls(result.stderr) == []


@pytest.fixture
def home(node: Node) -> str:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    return str(node.home)


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def publish_args(source: Path, home: str, *extra: str) -> tuple[str, ...]:
    return (
        "dataset",
        "publish",
        str(source),
        "--provider",
        "riverside-hospitals",
        "--standard",
        "health.visit",
        "--title",
        "Outpatient visits 2025",
        "--home",
        home,
        *extra,
    )


def versions_of(node: Node) -> int:
    with node.db.read() as session:
        return len(session.scalars(select(Version.id)).all())


def test_a_quarantined_row_with_markup_and_escapes_prints_as_written(
    node: Node,
    home: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = visit_rows(12, bad=2)
    rows[-1][3] = "[/]"
    rows[-2][3] = f"{ESC}[31m[bold red]x"
    source = write_csv(tmp_path / "visits.csv", rows)
    published = run_cli(
        capsys, monkeypatch, *publish_args(source, home, "--on-error", "quarantine")
    )
    # The version is committed, so the command says so: exit 0, and exactly one version.
    assert published.code == 0, published.stderr
    assert_clean(published)
    assert "[/]" in published.stdout
    assert "\\x1b[31m[bold red]x" in published.stdout
    assert f"published {REF} version 1" in published.output
    assert versions_of(node) == 1


def test_a_control_character_in_a_provider_name_is_refused_and_named(
    node: Node, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(
        capsys, monkeypatch, "provider", "add", "evil", "--name", HOSTILE, "--home", str(node.home)
    )
    assert result.code == ExitCode.INVALID
    assert_clean(result)
    assert "provider name holds the control character \\x1b" in result.errors
    listed = run_cli(capsys, monkeypatch, "provider", "list", "--home", str(node.home), "--json")
    assert listed.json() == []


def test_a_title_with_escapes_is_refused_before_any_work(
    node: Node,
    home: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = write_csv(tmp_path / "visits.csv", visit_rows(5))
    args = list(publish_args(source, home))
    args[args.index("--title") + 1] = HOSTILE
    result = run_cli(capsys, monkeypatch, *args)
    assert result.code == ExitCode.INVALID
    assert_clean(result)
    assert "the title holds the control character" in result.errors
    assert versions_of(node) == 0


def test_a_description_may_span_lines_but_not_hold_escapes(
    node: Node,
    home: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = write_csv(tmp_path / "visits.csv", visit_rows(5))
    bad = run_cli(capsys, monkeypatch, *publish_args(source, home, "--description", f"a{ESC}[2Jb"))
    assert bad.code == ExitCode.INVALID
    assert "the description holds the control character \\x1b" in bad.errors
    good = run_cli(
        capsys, monkeypatch, *publish_args(source, home, "--description", "first\nsecond [/]")
    )
    assert good.code == 0, good.stderr
    shown = run_cli(capsys, monkeypatch, "catalog", "show", REF, "--home", home)
    assert shown.code == 0, shown.stderr
    assert_clean(shown)
    assert "second [/]" in shown.stdout


def test_text_stored_before_is_escaped_in_every_listing(
    node: Node,
    home: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = write_csv(tmp_path / "visits.csv", visit_rows(5))
    assert run_cli(capsys, monkeypatch, *publish_args(source, home)).code == 0
    # As a node written by an older version, or by hand, could hold them.
    with node.db.write() as session:
        session.execute(update(Provider).values(name=HOSTILE))
        session.execute(update(Dataset).values(title=HOSTILE, description=HOSTILE))
    for args in (
        ("provider", "list"),
        ("catalog", "list"),
        ("catalog", "search", "visits"),
        ("catalog", "show", REF),
        ("catalog", "list", "--json"),
        ("provider", "list", "--json"),
    ):
        result = run_cli(capsys, monkeypatch, *args, "--home", home)
        assert result.code == 0, (args, result.stderr)
        assert_clean(result)
        assert "\\x1b[2J" in result.stdout or "\\u001b[2J" in result.stdout, args


def test_markup_in_an_error_message_prints_as_written(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(capsys, monkeypatch, "catalog", "show", "a[bold]b/c", "--home", home)
    assert result.code == ExitCode.INVALID
    assert_clean(result)
    assert "provider 'a[bold]b'" in result.errors


# Every Unicode character (controls, separators and lone surrogates included), and
# often the few that matter most, so that accepted text reaches every command too.
_PIECES = ["a", " ", "[/]", "[bold]", ":x:", "é", "\n", ESC, "\u202e", "\x9b"]
_ANY_TEXT = st.text(st.characters(codec=None), min_size=1, max_size=24) | st.lists(
    st.sampled_from(_PIECES), min_size=1, max_size=8
).map("".join)


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One node for every generated example: each uses slugs of its own."""
    opened = Node.init(
        Settings(home=tmp_path_factory.mktemp("fuzz") / "node", token_hash_memory_kib=1024)
    )
    add_provider(opened.db, "riverside-hospitals", "Riverside Hospitals")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def shared_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("fuzz-data") / "visits.csv", visit_rows(5))


_serial = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=_ANY_TEXT, title=_ANY_TEXT, note=_ANY_TEXT)
def test_any_text_in_an_echoed_field_never_crashes_nor_reaches_the_terminal_raw(
    shared_node: Node,
    shared_source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    title: str,
    note: str,
) -> None:
    home = str(shared_node.home)
    n = next(_serial)
    slug = f"p{n}"

    def cli(*args: str, operands: tuple[str, ...] = ()) -> Result:
        # Operands follow "--", as a user passes a text that may start with a dash.
        result = run_cli(capsys, monkeypatch, *args, "--home", home, "--", *operands)
        assert result.code in (ExitCode.OK, ExitCode.INVALID), (args, result.stderr)
        assert_clean(result)
        return result

    def stored_provider() -> bool:
        with shared_node.db.read() as session:
            return session.scalar(select(Provider.id).where(Provider.slug == slug)) is not None

    added = cli("provider", "add", slug, "--name", name)
    assert (added.code == 0) == stored_provider()
    cli("provider", "list")

    dataset = f"d{n}"
    published = cli(
        "dataset",
        "publish",
        str(shared_source),
        "--provider",
        "riverside-hospitals",
        "--dataset",
        dataset,
        "--standard",
        "health.visit",
        "--title",
        title,
        "--description",
        note,
    )
    with shared_node.db.read() as session:
        stored = session.scalar(select(Dataset.id).where(Dataset.slug == dataset))
    assert (published.code == 0) == (stored is not None)
    cli("catalog", "list")
    cli("catalog", "search", operands=(title,))
    if stored is None:
        return
    ref = f"riverside-hospitals/{dataset}"
    consumer = f"c{n}"
    cli("account", "create", consumer, "--role", "consumer")
    until = date(2099, 1, 1).isoformat()
    requested = cli(
        "access", "request", ref, "--as", consumer, "--purpose", "public-health-surveillance",
        "--epsilon", "1", "--until", until, "--note", note,
    )  # fmt: skip
    if requested.code != 0:
        return
    request_id = requested.output.split("requested ", 1)[1].split(":", 1)[0]
    cli("access", "show", request_id, "--as", consumer)
    refused = cli("access", "refuse", request_id, "--reason", name)
    shown = cli("access", "show", request_id, "--as", consumer, "--json")
    assert (refused.code == 0) == (shown.json()["state"] == "refused")
