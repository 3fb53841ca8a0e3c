"""``legwatch experiment``: plan, today, status, result, stop and list, on top of
``legwatch.experiment`` (plans) and ``legwatch.experiment_result`` (the analysis).

``register`` adds the subcommand to the command line's parser; every output in text fits 80 columns.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from legwatch.contracts import localtime
from legwatch.errors import UserError

if TYPE_CHECKING:
    from legwatch.experiment import Plan

# legwatch.experiment (numpy) is imported inside each action, so building the parser stays light.


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, 80, subsequent_indent="  "))


def _schedule_text(plan: Plan) -> list[str]:
    """The schedule, one week a line: ``2026-09-01 Tue  yes``."""
    from datetime import date

    out = []
    for night, on in zip(plan.nights, plan.schedule, strict=True):
        wd = date.fromisoformat(night).strftime("%a")
        out.append(f"  {night} {wd}  {plan.habit if on else '-'}")
    return out


@contextmanager
def _opened(args: argparse.Namespace, config: Callable) -> Iterator[tuple[dict, Any]]:
    """The configuration and the store, closed again whatever happens inside."""
    from legwatch.storage import open_store  # here: ``detect`` builds this parser but opens no store

    cfg = config(args)
    store = open_store(cfg)
    try:
        yield cfg, store
    finally:
        store.close()


def cmd_plan(args: argparse.Namespace, config: Callable) -> int:
    from legwatch.experiment import BLOCK, MIN_NIGHTS, make_plan

    with _opened(args, config) as (cfg, store):
        plan = make_plan(
            store, cfg["subject"], args.habit, args.nights, seed=args.seed, start=args.start, outcome=args.outcome
        )
    if args.format == "json":
        doc = {
            "habit": plan.habit,
            "experiment": plan.id,
            "subject": plan.subject,
            "seed": plan.seed,
            "block": plan.block,
            "outcome": plan.outcome,
            "schedule": plan.schedule_json(),
        }
        print(json.dumps(doc))
        return 0
    n_on = sum(plan.schedule)
    print(f"planned experiment {plan.id} for {plan.subject!r}: {len(plan.schedule)} nights from {plan.start}")
    print(
        _wrap(
            f"{n_on} nights with {plan.habit} and {len(plan.schedule) - n_on} without, in a random order "
            f"balanced in blocks of {BLOCK} (seed {plan.seed}). Do {plan.habit} on the evenings marked, "
            f"log it (`legwatch log {plan.habit}`), and leave it out on the others."
        )
    )
    if len(plan.schedule) < MIN_NIGHTS:
        print(_wrap(f"note: fewer than {MIN_NIGHTS} nights is too few for a conclusion; plan more."))
    print("\n".join(_schedule_text(plan)))
    return 0


def cmd_today(args: argparse.Namespace, config: Callable) -> int:
    from datetime import datetime

    from legwatch.experiment import plans, tonight_doc

    with _opened(args, config) as (cfg, store):
        kept = plans(store, cfg["subject"])
    now = None
    if args.night:
        try:
            now = localtime.localize(datetime.strptime(args.night, "%Y-%m-%d").replace(hour=18))
        except ValueError:
            raise UserError(f"--night must be a date like 2026-01-05, got {args.night!r}") from None
    doc = tonight_doc(kept, cfg["subject"], now)
    if args.format == "json":
        print(json.dumps(doc))
    else:
        print(_wrap(doc["reminder"]))
    return 0


def cmd_status(args: argparse.Namespace, config: Callable) -> int:
    from legwatch.experiment import pick, plans, tonight_doc
    from legwatch.experiment_result import standing

    with _opened(args, config) as (cfg, store):
        plan = pick(store, cfg["subject"], args.experiment)
        s = standing(store, plan)
        doc = {**s, "tonight": tonight_doc(plans(store, cfg["subject"]), cfg["subject"])}
    if args.format == "json":
        print(json.dumps(doc))
    else:
        print(_wrap(s["line"][0].upper() + s["line"][1:] + "."))
        print(_wrap(doc["tonight"]["reminder"]))
        if s["state"] in ("finished", "stopped"):
            print(_wrap("See the result with `legwatch experiment result`."))
    return 0


def cmd_result(args: argparse.Namespace, config: Callable) -> int:
    from legwatch.experiment import pick
    from legwatch.experiment_result import analyse, render_html, text_lines

    with _opened(args, config) as (cfg, store):
        plan = pick(store, cfg["subject"], args.experiment)
        r = analyse(store, plan)
    if args.format == "json":
        text = json.dumps(r) + "\n"
    elif args.format == "html":
        text = render_html(r)
    else:
        text = "\n".join(text_lines(r)) + "\n"
    if args.output:
        from pathlib import Path

        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--output {args.output}: cannot write: {exc.strerror}") from None
        print(f"wrote the result of {plan.id} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_stop(args: argparse.Namespace, config: Callable) -> int:
    from legwatch.experiment import stop_plan

    with _opened(args, config) as (cfg, store):
        plan = stop_plan(store, cfg["subject"])
    print(_wrap(f"stopped experiment {plan.id}; its nights so far stay in `legwatch experiment result`."))
    return 0


def cmd_list(args: argparse.Namespace, config: Callable) -> int:
    from legwatch.experiment import plans

    with _opened(args, config) as (cfg, store):
        kept = plans(store, cfg["subject"])
    if args.format == "json":
        print(
            json.dumps(
                [
                    {
                        "experiment": p.id,
                        "habit": p.habit,
                        "start": p.start,
                        "end": p.last,
                        "nights_planned": len(p.schedule),
                        "state": p.state(),
                    }
                    for p in kept
                ]
            )
        )
        return 0
    if not kept:
        print("no experiments yet: `legwatch experiment plan HABIT --nights 28`")
    for p in kept:
        print(f"{p.id:32s} {p.start} to {p.last}  {len(p.schedule):3d} nights  {p.state()}")
    return 0


def register(sub, common: argparse.ArgumentParser, config: Callable) -> None:
    """Add ``legwatch experiment`` to the subparsers ``sub``; ``config(args)`` loads the configuration."""
    ep = sub.add_parser(
        "experiment",
        help="a randomized N-of-1 trial of one remedy: which nights with it, which without, and what it did",
        description="Test one remedy (stretching, water, heat, ...) on yourself: a balanced random schedule of "
        "nights with and without it, tonight's assignment, and at the end a randomization test of its effect on "
        "episodes and cramps. Adherence comes from the habit log (`legwatch log HABIT` on the evenings you do it). "
        "Several experiments are kept; one runs at a time. Not medical advice.",
    )
    ep.set_defaults(func=lambda a: a.experiment_func(a, config))
    esub = ep.add_subparsers(dest="experiment_command", metavar="ACTION", required=True)

    def add(name: str, func, help_: str) -> argparse.ArgumentParser:
        sp = esub.add_parser(name, parents=[common], help=help_, description=help_)
        sp.set_defaults(experiment_func=func)
        return sp

    sp = add("plan", cmd_plan, "draw a balanced randomized schedule for HABIT, store it and print it")
    sp.add_argument("habit", metavar="HABIT", help="the habit to test, as `legwatch log` names it (e.g. stretching)")
    sp.add_argument("--nights", type=int, required=True, metavar="N", help="how many nights (28 or more is good)")
    sp.add_argument("--seed", type=int, metavar="S", help="random seed (default: drawn; stored with the plan)")
    sp.add_argument("--start", metavar="DATE", help="the first night, by its evening (default tonight)")
    sp.add_argument(
        "--outcome", choices=("episodes", "contractions"), default="episodes", help="what the verdict is about"
    )
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")

    sp = add("today", cmd_today, "say whether tonight is a night with the intervention")
    sp.add_argument("--night", metavar="DATE", help="ask about the night of DATE instead of tonight")
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")

    sp = add("status", cmd_status, "how the current (or a given) experiment stands")
    sp.add_argument("--experiment", metavar="ID", help="an experiment id or habit (default: the current one)")
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")

    sp = add("result", cmd_result, "what the experiment found: effect, confidence interval, p-value, verdict")
    sp.add_argument("--experiment", metavar="ID", help="an experiment id or habit (default: the current one)")
    sp.add_argument("--format", choices=("text", "json", "html"), default="text", help="output format (default text)")
    sp.add_argument("--output", metavar="FILE", help="write to FILE instead of the terminal")

    add("stop", cmd_stop, "end the running experiment early (its nights so far are kept)")
    sp = add("list", cmd_list, "every experiment kept, with its dates and state")
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
