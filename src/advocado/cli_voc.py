"""`advocado voc …`: classify comments in batch, score the classifier, manage brand words."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

voc_app = typer.Typer(
    help="Voice of the customer: comment persona, sentiment and language; brand words.",
    no_args_is_help=True,
)
lexicon_app = typer.Typer(
    help="A brand's own words for the persona classifier (emotional / rational / ignore).",
    no_args_is_help=True,
)
voc_app.add_typer(lexicon_app, name="lexicon")

err = Console(stderr=True)

LexiconOption = Annotated[
    list[Path],
    typer.Option("--lexicon", help="A brand-words file (term,persona[,weight]); repeatable."),
]
BuiltinOption = Annotated[
    bool,
    typer.Option("--builtin", help="Only the built-in words: ignore the database's brand words."),
]


def _lexicon(files: list[Path], builtin: bool):  # type: ignore[no-untyped-def]
    """Built-in words, then ADVOCADO_LEXICON, then --lexicon files, then (when a database is
    configured and --builtin is not given) the brand words stored in it."""
    from advocado.services.lexicon import LexiconError, env_terms, list_terms, parse_terms
    from advocado.text.lexicon import BrandTerm, lexicon_for

    terms: list[BrandTerm] = []
    try:
        terms += env_terms()
        for file in files:
            terms += parse_terms(file.read_text("utf-8-sig"), source=str(file))
    except (LexiconError, OSError) as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    if not builtin and os.environ.get("ADVOCADO_DATABASE_URL"):
        from sqlalchemy.exc import SQLAlchemyError

        from advocado.store.db import make_engine, read_only

        try:
            with read_only(make_engine()) as session:
                terms += [BrandTerm(t.term, t.persona, t.weight) for t in list_terms(session)]
        except SQLAlchemyError as error:
            err.print(f"[yellow]brand words not read from the database: {error}[/yellow]")
    return lexicon_for(tuple(terms))


@voc_app.command("classify")
def classify(
    file: Annotated[Path, typer.Argument(help="CSV with columns id,text, or JSONL.")],
    lexicon: LexiconOption = [],  # noqa: B006
    builtin: BuiltinOption = False,
) -> None:
    """Print one JSON object per input line, in input order: {"id", "language", "sentiment",
    "persona", "confidence", "evidence"}. A bad line prints {"id", "error"} in its place and
    a message naming the line on stderr; the exit status is then 1."""
    from advocado.services.voc import BadFile, BadLine, classify_line, read_comments

    compiled = _lexicon(lexicon, builtin)
    bad = 0
    write = sys.stdout.write
    try:
        for item in read_comments(file):
            if isinstance(item, BadLine):
                bad += 1
                err.print(f"{file}: {item}", markup=False, highlight=False)
                write(json.dumps({"id": item.id, "error": str(item)}, ensure_ascii=False) + "\n")
                continue
            write(json.dumps(classify_line(item, compiled), ensure_ascii=False) + "\n")
    except BadFile as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    sys.stdout.flush()
    if bad:
        raise typer.Exit(1)


@voc_app.command("evaluate")
def evaluate(
    file: Annotated[Path, typer.Argument(help="CSV or JSONL with id, text and persona.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    errors: Annotated[int, typer.Option(help="Show this many misclassified comments.")] = 0,
    lexicon: LexiconOption = [],  # noqa: B006
    builtin: BuiltinOption = False,
) -> None:
    """Accuracy, macro-F1 and the confusion matrix of the persona classifier on a labelled
    file (persona: emotional, rational or neutral)."""
    from advocado.services.voc import BadFile, evaluate_file

    try:
        figures, bad, wrong = evaluate_file(file, _lexicon(lexicon, builtin))
    except BadFile as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    for line in bad:
        err.print(f"{file}: {line} (skipped)", markup=False, highlight=False)
    if as_json:
        print(json.dumps({**figures.as_dict(), "skipped": len(bad),
                          "errors": wrong[:errors]}, ensure_ascii=False))  # fmt: skip
        return
    print(f"comments   {figures.total}")
    print(f"accuracy   {figures.accuracy:.4f}")
    print(f"macro-F1   {figures.macro_f1:.4f}")
    print()
    width = max(len(label) for label in figures.labels) + 2
    print("expected \\ predicted".ljust(22) + "".join(f"{n:>{width}}" for n in figures.labels))
    for gold in figures.labels:
        cells = "".join(f"{figures.confusion[gold][p]:>{width}}" for p in figures.labels)
        print(f"{gold:<22}{cells}")
    print()
    for label, row in figures.per_label.items():
        print(f"{label:<10} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
              f"F1 {row['f1']:.3f}  n={row['support']}")  # fmt: skip
    for item in wrong[:errors]:
        print(f"  {item['id']}: {item['expected']} -> {item['predicted']}  {item['text']}"
              f"  {item['evidence']}")  # fmt: skip


@voc_app.command("reclassify")
def reclassify(
    batch_size: Annotated[int, typer.Option(help="Responses per transaction.", min=1)] = 1000,
    only_unanalysed: Annotated[
        bool, typer.Option("--only-unanalysed", help="Only comments never analysed.")
    ] = False,
) -> None:
    """Analyse the stored comments again with the current built-in and brand words (after
    `voc lexicon import`, or a new version of the classifier). One transaction per batch;
    only the rows whose analysis changed are written."""
    from advocado.services.voc import reclassify_responses
    from advocado.store.db import default_engine

    done = reclassify_responses(
        default_engine(), batch_size=batch_size, only_unanalysed=only_unanalysed
    )
    print(f"{done.examined} comments analysed again in {done.batches} batches, "
          f"{done.changed} changed")  # fmt: skip


@lexicon_app.command("import")
def lexicon_import(
    file: Annotated[Path, typer.Argument(help="CSV or TSV: term,persona[,weight].")],
) -> None:
    """Add or re-weight brand words from a file (persona: emotional, rational or ignore).
    Stored comments that contain them are re-classified in the same transaction."""
    from advocado.services.lexicon import LexiconError, import_file
    from advocado.store.db import default_engine, unit_of_work

    try:
        with unit_of_work(default_engine()) as session:
            count = import_file(session, file, actor="cli")
    except LexiconError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    print(f"{count} brand words imported from {file}")


@lexicon_app.command("add")
def lexicon_add(
    term: str,
    persona: Annotated[str, typer.Option(help="emotional, rational or ignore.")],
    weight: Annotated[float, typer.Option(help="1 = enough on its own.")] = 1.0,
) -> None:
    """Add one brand word."""
    from advocado.services.lexicon import LexiconError, add_terms, validate_term
    from advocado.store.db import default_engine, unit_of_work

    try:
        brand = validate_term(term, persona, weight)
        with unit_of_work(default_engine()) as session:
            add_terms(session, [brand], actor="cli")
    except LexiconError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    print(f"{brand.term}: {brand.persona} ({brand.weight:g})")


@lexicon_app.command("remove")
def lexicon_remove(term: str) -> None:
    """Remove a brand word (the built-in meaning, if any, applies again)."""
    from advocado.services.lexicon import remove_term
    from advocado.store.db import default_engine, unit_of_work

    with unit_of_work(default_engine()) as session:
        found = remove_term(session, term=term, actor="cli")
    if not found:
        err.print(f"[yellow]{term}: not a brand word[/yellow]")
        raise typer.Exit(1)
    print(f"removed {term}")


@lexicon_app.command("list")
def lexicon_list() -> None:
    """The brand words in the database, as term<TAB>persona<TAB>weight."""
    from advocado.services.lexicon import list_terms
    from advocado.store.db import default_engine, read_only

    with read_only(default_engine()) as session:
        for record in list_terms(session):
            print(f"{record.term}\t{record.persona}\t{record.weight:g}")
