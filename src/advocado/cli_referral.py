"""`advocado referral …` and `advocado ledger …` (scripts rely on these names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from advocado.store.db import default_engine, unit_of_work

referral_app = typer.Typer(
    help="Referral programs, codes, stats, review queue.", no_args_is_help=True
)
program_app = typer.Typer(help="Referral programs (from YAML files).", no_args_is_help=True)
ledger_app = typer.Typer(help="Points and store-credit ledger.", no_args_is_help=True)
referral_app.add_typer(program_app, name="program")

err = Console(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@program_app.command("apply")
def program_apply(file: Path) -> None:
    """Create or update a program from a YAML (or JSON) file; prints its slug."""
    from advocado.domain.programs import ProgramError
    from advocado.services.programs import apply_program, read_program_file

    try:
        data = read_program_file(file)
        with unit_of_work(default_engine()) as session:
            applied = apply_program(session, data, actor="cli")
    except ProgramError as error:
        err.print(f"[red]{file}: {error.field}: {error.reason}[/red]", markup=False)
        raise typer.Exit(2) from None
    for warning in applied.warnings:
        err.print(f"WARNING: {warning}", style="yellow", markup=False)
    err.print(f"program {'created' if applied.created else 'updated'}", markup=False)
    print(applied.slug)


@referral_app.command("code")
def referral_code(
    program: Annotated[str, typer.Option(help="The program's slug.")],
    customer: Annotated[str, typer.Option(help="The advocate's external id.")],
    vanity: Annotated[str | None, typer.Option(help="A chosen code, e.g. ZHANGSAN.")] = None,
) -> None:
    """Print the advocate's code in the program, creating it (and the customer) if needed."""
    from advocado.services.programs import UnknownProgram, code_for

    try:
        with unit_of_work(default_engine()) as session:
            code = code_for(
                session, program_slug=program, customer_external_id=customer, vanity=vanity
            )
    except (UnknownProgram, ValueError) as error:
        err.print(f"[red]{error}[/red]", markup=False)
        raise typer.Exit(2) from None
    print(code.code)


@referral_app.command("stats")
def referral_stats(
    program: Annotated[str | None, typer.Option(help="Only this program's slug.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Clicks (raw and unique), signups, qualified, rejected, rewards pending and issued."""
    from advocado.services.referrals import program_stats

    with unit_of_work(default_engine()) as session:
        stats = program_stats(session, program)
    if program and not stats:
        err.print(f"no program {program!r}", markup=False)
        raise typer.Exit(2)
    if as_json:
        print(json.dumps(stats, ensure_ascii=False))
        return
    for item in stats:
        print(
            f"{item['slug']}: {item['clicks']} clicks ({item['unique_clicks']} unique), "
            f"{item['signups']} signups, {item['qualified']} qualified, "
            f"{item['rejected']} rejected, {item['in_review']} in review, "
            f"{item['rewards_pending']} rewards pending, {item['rewards_issued']} issued"
        )


@referral_app.command("review")
def referral_review(as_json: JsonOption = False) -> None:
    """Referrals held for review, with the fraud findings that held them."""
    from advocado.services.referrals import review_queue

    with unit_of_work(default_engine()) as session:
        items = review_queue(session)
    if as_json:
        print(json.dumps(items, ensure_ascii=False))
        return
    for item in items:
        print(
            f"#{item['id']} {item['program']}: {item['advocate']} → {item['friend']}: "
            f"{item['reason']}"
        )


@referral_app.command("decide")
def referral_decide(
    referral_id: int,
    approve: Annotated[bool, typer.Option("--approve/--reject", help="The decision.")],
    note: Annotated[str, typer.Option(help="Why (kept with the referral).")] = "",
) -> None:
    """Approve or reject a referral held for review."""
    from advocado.services.referrals import NotInReview, decide

    try:
        view = decide(
            default_engine(), referral_id=referral_id, approve=approve, note=note, actor="cli"
        )
    except NotInReview as error:
        err.print(str(error), markup=False)
        raise typer.Exit(2) from None
    print(view["status"])


@referral_app.command("webhook-secret")
def webhook_secret() -> None:
    """Print the secret that signs webhooks to /api/v1/webhooks/events (made on first use)."""
    from advocado.services.clicks import stored_secret
    from advocado.web.api.referrals import WEBHOOK_SECRET

    print(stored_secret(default_engine(), WEBHOOK_SECRET))


@ledger_app.command("balance")
def ledger_balance(external_id: str, as_json: JsonOption = False) -> None:
    """A customer's points and store credit: available, pending (in hold), expired."""
    from advocado.services.ledger import balances
    from advocado.store.models import Customer

    with unit_of_work(default_engine()) as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
        if customer_id is None:
            err.print(f"no customer {external_id!r}", markup=False)
            raise typer.Exit(2)
        found = {asset: b.as_dict() for asset, b in balances(session, customer_id).items()}
    if as_json:
        print(json.dumps({"customer": external_id, "balances": found}))
        return
    if not found:
        print(f"{external_id}: no points or credit")
    for asset, b in found.items():
        print(
            f"{asset}\tavailable {b['available']}\tpending {b['pending']}\texpired {b['expired']}"
        )


@ledger_app.command("spend")
def ledger_spend(
    external_id: str,
    amount: Annotated[int, typer.Argument(help="Points, or minor units of store credit.")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key spends once.")],
    asset: Annotated[str, typer.Option(help='"points" or a currency code (credit).')] = "points",
    memo: Annotated[str, typer.Option(help="What it was spent on.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Spend a customer's points or store credit (exit 3 if the balance is short)."""
    from advocado.services import ledger

    try:
        spent = ledger.spend_balance(
            default_engine(),
            customer_external_id=external_id,
            asset=asset,
            amount=amount,
            client_key=key,
            memo=memo,
        )
    except ledger.InsufficientBalance as error:
        err.print(str(error), markup=False)
        raise typer.Exit(3) from None
    except ledger.SpendError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(spent.as_dict()))
        return
    again = " (already spent with this key: nothing more)" if spent.duplicate else ""
    print(
        f"spent {spent.amount} {spent.asset} for {external_id}{again}; "
        f"available now {spent.balance.available}"
    )


@ledger_app.command("correct", context_settings={"ignore_unknown_options": True})
def ledger_correct(
    external_id: str,
    amount: Annotated[int, typer.Argument(help="+ adds, - takes (points or minor units).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger and the audit log).")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key corrects once.")],
    unit: Annotated[str, typer.Option(help='"points" or "credit".')] = "points",
    currency: Annotated[str | None, typer.Option(help="Credit currency (if several).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Correct a customer's points or store credit by hand: a new adjusting entry, audited
    (exit 3 if it would take the available balance below zero, 2 for bad input)."""
    from advocado.services import audit, ledger

    try:
        done = ledger.correct_balance(
            default_engine(), customer=external_id, amount=amount, unit=unit,
            currency=currency, reason=reason, actor=audit.CLI, key=key,
        )  # fmt: skip
    except ledger.InsufficientBalance as error:
        err.print(str(error), markup=False)
        raise typer.Exit(3) from None
    except ledger.SpendError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(done.as_dict(), ensure_ascii=False))
        return
    again = " (already corrected with this key: nothing more)" if done.duplicate else ""
    print(
        f"corrected {done.amount:+d} {done.asset} for {external_id}{again}; "
        f"available {done.before.available} -> {done.after.available}"
    )


@ledger_app.command("expire")
def ledger_expire() -> None:
    """Post the expiry of points and credit that lapsed unspent (soonest first; safe to run
    again: each lot expires once). Prints how many entries were posted."""
    from advocado import clock
    from advocado.services.ledger import expire_due

    with unit_of_work(default_engine()) as session:
        posted = expire_due(session, now=clock.now())
    print(posted)


@referral_app.command("gifts")
def referral_gifts(
    program: Annotated[str | None, typer.Option(help="Only this program (slug).")] = None,
    as_json: JsonOption = False,
) -> None:
    """The gift fulfilment queue: gifts won and not yet shipped, oldest first."""
    from advocado.services.gifts import pending_gifts

    items = pending_gifts(default_engine(), program_slug=program)
    if as_json:
        print(json.dumps(items, ensure_ascii=False))
        return
    if not items:
        print("no gifts waiting / 没有待发货的礼品")
    for g in items:
        state = "ready" if g["ready"] else f"hold until {g['ship_from'][:10]}"
        print(f"{g['reward_id']}\t{g['program']}\t{g['customer']}\t{g['gift']}\t{state}")


@referral_app.command("ship")
def referral_ship(
    reward_id: int,
    tracking: Annotated[str, typer.Option(help="Carrier and tracking number, or a note.")],
    by: Annotated[str | None, typer.Option(help="Who shipped it.")] = None,
) -> None:
    """Mark a gift reward shipped (once; exit 2 with the reason if it cannot be)."""
    from advocado.services.gifts import GiftError, mark_shipped

    try:
        view = mark_shipped(default_engine(), reward_id=reward_id, tracking=tracking, shipped_by=by)
    except GiftError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(2) from None
    again = " (already recorded)" if view["duplicate"] else ""
    print(f"shipped {view['gift']} to {view['customer']}: {tracking}{again}")
