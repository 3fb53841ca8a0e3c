"""The ``legwatch`` command line: one console command with subcommands.

Errors in what the user gave (flags, files, config, habit entries) print one line and exit 2;
unreachable services print one line and exit 1. Nothing is written when input is refused.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from legwatch import __version__
from legwatch.errors import UserError

if TYPE_CHECKING:
    from legwatch.contracts.config import Config

log = logging.getLogger("legwatch")


# --- shared plumbing -------------------------------------------------------------------------


def open_store(cfg: Config, **kwargs):
    """``legwatch.storage.open_store``, imported on first use: ``detect`` (whose whole-process time
    is benchmarked against a peer) opens no store and so skips importing the storage layer."""
    from legwatch.storage import open_store as open_configured

    return open_configured(cfg, **kwargs)


def _config(args: argparse.Namespace) -> Config:
    from legwatch.contracts import localtime
    from legwatch.contracts.config import load_config  # (not imported by commands that need no config)

    cfg = load_config(
        args.config,
        overrides={
            "mqtt.url": args.mqtt_url,
            "influx.url": args.influx_url,
            "influx.db": args.influx_db,
            "subject": args.subject,
            "data_dir": args.data_dir,
        },
    )
    localtime.use(cfg["timezone"])  # every time shown (and typed) from here on is in this zone
    return cfg


def _console():
    from rich.console import Console

    return Console()


def _sensor_from_path(path: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.") or "sensor"
    return stem[:64]


def _check_sensor_id(sensor: str, *, from_file: bool) -> None:
    from legwatch.contracts import payload, topics

    said = f"the file name gives sensor id {sensor!r}" if from_file else f"--sensor {sensor!r}"
    if sensor in topics.RESERVED:
        hint = "; pass --sensor NAME" if from_file else ""
        raise UserError(f"{said}, a reserved word ({', '.join(sorted(topics.RESERVED))}){hint}")
    if not payload.valid_sensor_id(sensor):
        raise UserError(f"{said}: a sensor id is 1-64 of A-Z a-z 0-9 _ . -")


def _read_recording(path: str, args: argparse.Namespace | None = None):
    from legwatch.recording import load, options

    return load(path, options(args) if args is not None else None)


# --- subcommands ------------------------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
    from detector.events import KINDS_COUNTED
    from detector.offline import detect_arrays
    from legwatch.recording import problems

    _config(args)  # the configured time zone (read and shown)
    loaded = _read_recording(args.file, args)
    night = detect_arrays(loaded.t, loaded.xyz)
    remarks = problems(loaded.t, loaded.xyz)
    result = {
        "file": args.file,
        "read": loaded.recording.to_dict(),
        "remarks": remarks,
        **night.summary(),
        "episodes": [e.to_dict() for e in night.episodes],
        "gaps": [{"start": g.start, "end": g.end, "duration_s": round(g.duration_s, 3)} for g in night.gaps],
    }
    if args.format == "json":
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return 0
    from rich import box
    from rich.table import Table

    from legwatch.contracts import localtime
    from legwatch.summary import _hm

    con = _console()
    sw = night.sleep_window
    con.print(f"[bold]{args.file}[/bold]: {night.samples} samples, {loaded.describe()}", highlight=False)
    if night.start is not None:
        day = localtime.local(night.start)
        con.print(
            f"Recording: {day:%Y-%m-%d} {_hm(night.start)} – {_hm(night.end)}; times in {localtime.label(night.start)}"
        )
    for r in remarks:
        con.print(f"[yellow]note:[/yellow] not a night to import: {r}", highlight=False)
    con.print(f"Sleep window: {_hm(sw[0])} – {_hm(sw[1])}" if sw else "Sleep window: not found")
    counts = result["counts"]
    con.print(
        "Counts over the whole recording: "
        + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no episodes")
    )
    outside = sum(1 for e in night.episodes if e.counted and not e.in_sleep)
    if sw and outside:  # the summary counts only the sleep window: say where the two differ
        inside = {k: sum(1 for e in night.episodes if e.kind == k and e.in_sleep) for k in KINDS_COUNTED}
        con.print(
            "In the sleep window (what `legwatch summary` counts): "
            + ", ".join(f"{k} {n}" for k, n in inside.items())
            + f"; {outside} more outside it"
        )
    if night.plm_index is not None:
        con.print(f"Periodic leg-movement index: {night.plm_index:.1f}/h of sleep (clinical threshold > 15/h)")
    if night.gaps:
        con.print(f"Gaps: {len(night.gaps)} ({sum(g.duration_s for g in night.gaps):.0f} s without data)")
    zone = localtime.short(night.start) if night.start is not None else "local"
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True)
    for col, justify in (
        (f"start\n({zone})", "left"),
        (f"end\n({zone})", "left"),
        ("kind", "left"),
        ("duration\n(s)", "right"),
        ("peak\n(g)", "right"),
        ("periodic", "left"),
        ("in\nsleep", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for e in night.episodes:
        table.add_row(
            _hm(e.start),
            _hm(e.end),
            e.kind,
            f"{e.duration_s:.2f}",
            f"{e.peak_g:.3f}",
            "yes" if e.periodic else "",
            "yes" if e.in_sleep else "no",
        )
    con.print(table)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from legwatch.replay import confirmed_progress, replay

    cfg = _config(args)
    if args.speed < 0:
        raise UserError("--speed must be >= 0 (0: as fast as the monitor stores it)")
    if not cfg["mqtt.url"]:
        raise UserError("no MQTT broker configured: set LEGWATCH_MQTT_URL or pass --mqtt-url")
    sensor = args.sensor or _sensor_from_path(args.file)
    _check_sensor_id(sensor, from_file=not args.sensor)
    if args.ack_wait < 0:
        raise UserError("--ack-wait must be >= 0")
    loaded = _read_recording(args.file, args)
    t, xyz = loaded.t, loaded.xyz
    with confirmed_progress() as progress:
        n = replay(
            t,
            xyz,
            url=cfg["mqtt.url"],
            sensor=sensor,
            prefix=cfg["mqtt.topic_prefix"],
            speed=args.speed,
            protocol=cfg["mqtt.protocol"],
            ca_file=cfg["mqtt.ca_file"],
            progress=progress,
            ack_wait_s=args.ack_wait,
        )
    print(f"published {len(t)} samples in {n} batches as sensor {sensor!r}, then marked it offline")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from legwatch.monitor.service import Monitor
    from legwatch.morning import publish_summary

    cfg = _config(args)
    if not cfg["mqtt.url"]:
        raise UserError("no MQTT broker configured: set LEGWATCH_MQTT_URL or pass --mqtt-url")
    store = open_store(cfg, tolerate_down=True)
    mon = Monitor(cfg, store, exit_after_nights=args.exit_after_nights)
    mon.on_night_stored(publish_summary, "summaries")
    from legwatch.experiment_publish import TonightPublisher

    mon.every(TonightPublisher(), "experiment_reminders", 60.0)
    log.info("monitor starting; storing to %s", "InfluxDB" if cfg["influx.url"] else cfg.data_dir)

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    # SIGTERM (systemd, docker stop) and SIGINT stop cleanly: finish the batch, checkpoint, disconnect.
    # Set explicitly: a monitor started in the background may have inherited an ignored SIGINT.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        mon.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    print(
        json.dumps(
            {
                "stats": dict(mon.stats),
                "rejected": dict(mon.rejected),
                "nights": len(mon.nights),
                "latency_ms": mon.latency_ms(),
            }
        )
    )
    return 0


def _store_name(store) -> str:
    from legwatch.storage.influx import InfluxStore

    if isinstance(store, InfluxStore):
        return f"InfluxDB {store.url} (db {store.db})"
    return f"SQLite {getattr(store, 'path', '')}"


def _write_output(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--output {path}: cannot write: {exc.strerror}") from None


def cmd_import(args: argparse.Namespace) -> int:
    from legwatch.night_import import run

    cfg = _config(args)

    def sensor_for(path: str) -> str:
        sensor = args.sensor or _sensor_from_path(path)
        _check_sensor_id(sensor, from_file=not args.sensor)
        return sensor

    return run(args, cfg, sensor_for=sensor_for, open_store=open_store, store_name=_store_name)


def cmd_convert(args: argparse.Namespace) -> int:
    from legwatch.recording import cmd_convert as convert

    _config(args)  # local times without a zone are read in the configured one
    return convert(args)


def cmd_log(args: argparse.Namespace) -> int:
    from legwatch.habits import KNOWN, MEDICATION_ALIASES, make_entry, store_entry

    if args.habit == "list":
        for name, spec in KNOWN.items():
            print(f"{name:13s} {spec.unit:7s} default {spec.default:<5g} {spec.help}")
        print(f"{', '.join(MEDICATION_ALIASES):29s} shorthand for `medication <name>`")
        print(f"{'any other name':29s} a custom habit (default value 1, unit as given)")
        return 0
    from legwatch import habit_log, habit_names
    from legwatch.contracts import localtime

    cfg = _config(args)
    if args.habit == "undo":
        store = open_store(cfg)
        try:
            gone = habit_log.undo(store, cfg["subject"])
        finally:
            store.close()
        print(f"removed the last entry logged for {cfg['subject']!r}: {habit_log.describe(gone)}")
        return 0
    entry = make_entry(args.habit, args.value, unit=args.unit, at=args.at, note=args.note, intensity=args.intensity)
    store = open_store(cfg)
    try:
        new_habit = entry.habit not in KNOWN and entry.habit not in MEDICATION_ALIASES
        if new_habit:
            names = habit_names.stored_habits(store, cfg["subject"])
            new_habit = entry.habit not in names
            hint = None if args.new else habit_names.suggest(args.habit, args.value, names)
            if hint is not None:
                raise UserError(hint.message())
        e = store_entry(store, cfg["subject"], entry)
    finally:
        store.close()
    amount = f"{e.value:g} {e.unit}".strip()
    print(
        f"logged {e.label()}: {amount} at {localtime.local(e.time):%Y-%m-%d %H:%M:%S %Z} for {cfg['subject']!r}"
        f" (id {habit_log.entry_id(e.habit, int(round(e.time * 1000)))}; `legwatch log undo` removes it)"
    )
    if new_habit:
        print(f"{e.habit!r} is a new custom habit (`legwatch log list` shows the known ones)")
    return 0


def cmd_import_habits(args: argparse.Namespace) -> int:
    from collections import Counter

    from legwatch.habit_import import read_habits_csv
    from legwatch.habits import store_entries

    cfg = _config(args)
    items = read_habits_csv(args.file, cfg["subject"])
    store = open_store(cfg)
    try:
        done = store_entries(store, items, skip_identical=True)
        where = _store_name(store)
    finally:
        store.close()
    written = [(s, e) for s, e, w in done if w]
    per = Counter(e.habit for _, e in written)
    subjects = sorted({s for s, _ in written}) or sorted({s for s, _ in items})
    detail = ", ".join(f"{h} {n}" for h, n in sorted(per.items()))
    print(
        f"imported {len(written)} habit entries from {args.file} for {', '.join(map(repr, subjects))} into {where}"
        + (f": {detail}" if detail else "")
        + (f"; {len(done) - len(written)} already stored" if len(done) > len(written) else "")
    )
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from legwatch import summary

    cfg = _config(args)
    if args.publish and not cfg["mqtt.url"]:
        raise UserError("--publish needs an MQTT broker: set LEGWATCH_MQTT_URL or pass --mqtt-url")
    store = open_store(cfg)
    try:
        s = summary.build(store, cfg["subject"], args.night)
        from legwatch.experiment_result import annotate

        annotate(store, s)
        act = summary.activity(store, s) if args.format == "html" else []
    finally:
        store.close()
    if args.format == "json":
        text = json.dumps(s) + "\n"
    elif args.format == "html":
        from legwatch.summary_html import render_html

        text = render_html(s, act)
    else:
        text = ""
    if args.format == "text" and not args.output:
        summary.render_text(s, _console())
    else:
        if args.format == "text":
            from rich.console import Console

            buf = io.StringIO()
            summary.render_text(s, Console(file=buf, width=110, color_system=None))
            text = buf.getvalue()
        if args.output:
            _write_output(args.output, text)
        else:
            sys.stdout.write(text)
    if args.output:
        print(f"wrote the summary of the night of {s['night_of']} to {args.output}", file=sys.stderr)
    if args.publish:
        from legwatch import homeassistant
        from legwatch.contracts import topics

        n = homeassistant.publish_once(cfg, s)
        print(
            f"published the summary of the night of {s['night_of']} (retained) on "
            f"{topics.summary(cfg['mqtt.topic_prefix'], s['subject'])} with {n - 2} Home Assistant discovery configs",
            file=sys.stderr,
        )
    return 0


def cmd_correlate(args: argparse.Namespace) -> int:
    from legwatch import correlate

    cfg = _config(args)
    store = open_store(cfg)
    try:
        try:
            report = correlate.build(store, cfg["subject"], since=args.since, outcome=args.outcome)
        except correlate.CorrelateError as exc:
            raise UserError(str(exc)) from None
    finally:
        store.close()
    if args.format == "json":
        text = json.dumps(report) + "\n"
    elif args.format == "html":
        from legwatch.correlate_html import render_html

        text = render_html(report)
    elif args.output:
        from rich.console import Console

        buf = io.StringIO()
        correlate.render_text(report, Console(file=buf, width=140, color_system=None))
        text = buf.getvalue()
    else:
        correlate.render_text(report, _console())
        return 0
    if args.output:
        _write_output(args.output, text)
        print(f"wrote the correlation report ({report['nights']} nights) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from legwatch.report_cli import run_report

    return run_report(args, _config(args))


def cmd_status(args: argparse.Namespace) -> int:
    from legwatch import readiness

    cfg = _config(args)
    checks = readiness.run(cfg)
    if args.format == "json":
        json.dump(readiness.report(checks), sys.stdout)
        sys.stdout.write("\n")
    else:
        readiness.render_text(checks, _console())
    return 0 if readiness.ready(checks) else 1


def cmd_nights(args: argparse.Namespace) -> int:
    from legwatch import nights

    cfg = _config(args)
    store = open_store(cfg)
    try:
        found = nights.stored(store, cfg["subject"], since=args.since, until=args.until)
        items = nights.rows(store, cfg["subject"], found)
    finally:
        store.close()
    if args.format == "json":
        json.dump({"subject": cfg["subject"], "timezone": _zone_name(), "nights": items}, sys.stdout)
        sys.stdout.write("\n")
    else:
        nights.render_text(items, _console(), subject=cfg["subject"])
    return 0


def _zone_name() -> str:
    from legwatch.contracts import localtime

    return localtime.name() or localtime.label()


def _confirm(question: str, yes: bool) -> bool:
    """``--yes``, or the person's answer on a terminal; without either, a one-line refusal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UserError("not a terminal to ask on: add --yes to delete without asking")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def cmd_nights_delete(args: argparse.Namespace) -> int:
    from legwatch import nights

    cfg = _config(args)
    store = open_store(cfg)
    try:
        found = nights.find(store, cfg["subject"], args.night, args.sensor or "")
        counts = nights.points_to_delete(store, cfg["subject"], found)
        what = "; ".join(nights.describe(n) for n in found)
        detail = ", ".join(f"{n} {m}" for m, n in counts.items())
        if not _confirm(f"delete the night of {what} for {cfg['subject']!r} ({detail} points)?", args.yes):
            print("nothing deleted")
            return 1
        nights.delete(store, cfg["subject"], found)
        where = _store_name(store)
    finally:
        store.close()
    print(f"deleted the night of {what} for {cfg['subject']!r} from {where}: {detail} points")
    return 0


def cmd_habits(args: argparse.Namespace) -> int:
    from legwatch import habit_log

    cfg = _config(args)
    store = open_store(cfg)
    try:
        pts = habit_log.entries(store, cfg["subject"], since=args.since, until=args.until, habit=args.habit)
    finally:
        store.close()
    if args.format == "json":
        doc = {"subject": cfg["subject"], "timezone": _zone_name(), "entries": [habit_log.as_dict(p) for p in pts]}
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if args.since:
        span = f"from {args.since}" + (f" to {args.until}" if args.until else "")
    elif args.until:
        span = f"up to {args.until}"
    else:
        span = f"of the last {habit_log.DEFAULT_DAYS} days (--since DATE for more)"
    which = f"{args.habit} entries" if args.habit else "Habit entries"
    habit_log.render_text(pts, _console(), heading=f"{which} {span} for {cfg['subject']!r}")
    return 0


def cmd_habits_delete(args: argparse.Namespace) -> int:
    from legwatch import habit_log

    cfg = _config(args)
    store = open_store(cfg)
    try:
        p = habit_log.find(store, cfg["subject"], args.id)
        habit_log.remove(store, cfg["subject"], p)
    finally:
        store.close()
    print(f"deleted {habit_log.describe(p)} for {cfg['subject']!r}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from collector.profiles.decode import decode_hex

    settings: dict = {}
    names = (("factor", "factor"), ("rate", "sample_rate"), ("previous_ns", "previous_ns"), ("model", "model"))
    for name, key in (*names, ("chip", "chip"), ("range", "range_g")):
        if getattr(args, name) is not None:
            settings[key] = getattr(args, name)
    print(json.dumps(decode_hex(args.profile, args.hex, **settings)))
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from collector.ble import scan

    return scan(timeout=args.timeout, console=_console())


def cmd_collect(args: argparse.Namespace) -> int:
    from collector.ble import collect

    cfg = _config(args)
    return collect(
        cfg,
        profile=args.profile,
        address=args.address,
        sensor=args.sensor,
        rate=args.rate,
        range_g=args.range,
        stall_s=args.watchdog,
        offline_after_s=args.offline_after,
        spool_mb=args.spool_mb,
        spool_fsync=args.spool_fsync,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from legwatch.demo import run_demo

    cfg = _config(args)
    return run_demo(cfg, hours=args.hours, rate=args.rate, seed=args.seed, console=_console(), subject=args.subject)


# --- parser -----------------------------------------------------------------------------------


def _common_options(*, nested: bool = False) -> argparse.ArgumentParser:
    """The configuration flags every command takes. ``nested`` (the ``delete`` under ``nights`` and
    ``habits``): flags not given leave no default behind, so ``legwatch nights --subject ann delete
    DATE`` keeps the --subject given before ``delete``."""
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS if nested else None)
    g = common.add_argument_group("configuration (flags override LEGWATCH_* variables, which override the file)")
    g.add_argument("--config", metavar="FILE", help="TOML configuration file (or LEGWATCH_CONFIG)")
    g.add_argument("--mqtt-url", metavar="URL", help="MQTT broker, e.g. mqtt://user:pass@host:1883")
    g.add_argument("--influx-url", metavar="URL", help="InfluxDB base URL (default: embedded SQLite store)")
    g.add_argument("--influx-db", metavar="DB", help="InfluxDB database or bucket (default legwatch)")
    g.add_argument("--subject", help="whose legs (default 'me')")
    g.add_argument("--data-dir", metavar="DIR", help="where the SQLite store, checkpoints and spool live")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if nested else 0,
        help="more log output (-vv for debug)",
    )
    return common


class _NotBuilt:
    """What ``build_parser(only=...)`` gives for the commands it was not asked for: it takes every
    call a subparser would (``add_argument``, ``add_subparsers``, ...) and builds nothing."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self


_NOT_BUILT = _NotBuilt()


def _profile_names(sp: argparse.ArgumentParser) -> list[str]:
    """The device profiles, for a subparser's choices; none for one not built (importing
    ``collector.profiles`` costs ~10 ms, which ``detect`` need not pay)."""
    if sp is _NOT_BUILT:
        return []
    from collector.profiles import profile_names

    return profile_names()


def _command_in(argv: list[str]) -> str | None:
    """The command word of a command line (its first word not an option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only`` (a command's name) just that command's subparser: the
    others' ~30 parsers and ~140 arguments cost ~30 ms of every run of a short command such as
    ``detect`` (whose whole-process time is benchmarked against a peer). A name that is no command
    gets the whole parser, for argparse's error listing the commands."""
    from legwatch.read_flags import add_read_flags

    common = _common_options()
    built: list[str] = []

    p = argparse.ArgumentParser(
        prog="legwatch",
        description="Night monitoring of leg twitches, leg movements and cramps from a shin-worn accelerometer. "
        "A self-tracking tool, not a diagnosis.",
    )
    p.add_argument("--version", action="version", version=f"legwatch {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func, help_: str, description: str | None = None) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _NOT_BUILT  # type: ignore[return-value]
        sp = sub.add_parser(name, parents=[common], help=help_, description=description or help_)
        sp.set_defaults(func=func)
        built.append(name)
        return sp

    sp = add(
        "detect",
        cmd_detect,
        "detect episodes in a recorded CSV (offline)",
        "Detect twitches, leg movements and contractions in a recording. FILE is legwatch CSV (header "
        "timestamp,ax,ay,az; rows may be uneven and have gaps) or any format convert reads, recognised by content; "
        "units and time units are detected where unambiguous and said in the output.",
    )
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    add_read_flags(sp)

    sp = add(
        "convert",
        cmd_convert,
        "write legwatch CSV from any recording detect reads",
        "Read FILE (legwatch CSV, MetaBase, Polar Sensor Logger, WitMotion, phyphox, Sensor Logger, Axivity .cwa, "
        "ActiGraph CSV or .gt3x, GENEActiv .bin: recognised by content) and write legwatch CSV (timestamp,ax,ay,az in "
        "Unix seconds and g) to --output or standard output; what was read is said on standard error.",
    )
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("--output", metavar="OUT.csv", help="write here (default: standard output)")
    add_read_flags(sp)

    sp = add(
        "replay",
        cmd_replay,
        "publish a recording over MQTT exactly as the collector would",
        "Publish FILE over MQTT in ~1 s binary batches (QoS 1), then mark the sensor offline.",
    )
    sp.add_argument("file", metavar="FILE")
    sp.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="X",
        help="X times real time; 0 (default) as fast as the monitor stores it",
    )
    sp.add_argument(
        "--ack-wait",
        type=float,
        default=30.0,
        metavar="S",
        help="no monitor acknowledging within S seconds: go on with the broker's acknowledgements (default 30)",
    )
    sp.add_argument("--sensor", help="sensor id to publish as (default: from the file name)")
    add_read_flags(sp)

    sp = add(
        "monitor",
        cmd_monitor,
        "the detector service: MQTT in, episodes out (store and MQTT)",
        "Subscribe to every sensor's samples, detect episodes as they happen, store episode/activity/gap/"
        "night points and publish one MQTT event per episode. Runs until interrupted.",
    )
    sp.add_argument(
        "--exit-after-nights",
        type=int,
        metavar="N",
        help="exit after N sensors went offline and their nights were stored",
    )

    sp = add(
        "import",
        cmd_import,
        "detect a recorded night offline and store its results",
        "For sensors that log rather than stream: detect each FILE (any format detect reads; a FOLDER: the "
        "recordings in it) in parallel and store its episodes and night. A file that cannot be a night (under 15 min, "
        "under 10 Hz, no gravity) is refused and nothing of it stored; the others go on. Exit 2 if any was refused.",
    )
    sp.add_argument("files", metavar="FILE", nargs="+", help="recordings or folders of recordings")
    sp.add_argument("--sensor", help="sensor id to store under (default: from the file name)")
    add_read_flags(sp)

    sp = add(
        "log",
        cmd_log,
        "log a habit: water, caffeine, alcohol, exercise, stretching, medication, heat, cold…",
        "Log one habit entry. `legwatch log list` shows the known habits with units and defaults; "
        "`legwatch log undo` removes the entry logged last. Any other name is a custom habit; a name close to a "
        "known one (coffee, magnesium, a typo) is refused with the command to use instead, unless --new. "
        "Examples: `legwatch log water 500ml`, `legwatch log exercise 45 "
        "--intensity hard --at 18:00`, `legwatch log medication statin --at 21:00`, `legwatch log stretching 10 "
        "--at 'yesterday 22:15'`. Amounts are stored in each habit's own unit (500ml of water as 0.5 l).",
    )
    sp.add_argument("habit", metavar="HABIT", help="habit name, or 'list'")
    sp.add_argument(
        "value", metavar="VALUE", nargs="?", help="amount, optionally with a unit (0.5, 500ml); a name for medication"
    )
    sp.add_argument("--unit", help="unit of VALUE (default per habit; e.g. ml, glass, cup, h)")
    sp.add_argument("--at", metavar="TIME", help="when: 21:30, 'yesterday 18:00' or ISO 8601 (default now)")
    sp.add_argument("--intensity", metavar="LEVEL", help="exercise intensity: light, moderate or hard")
    sp.add_argument("--note", metavar="TEXT", help="free text, one line")
    sp.add_argument(
        "--new",
        action="store_true",
        help="make a new custom habit even when the name is close to a known one (otherwise refused with a suggestion)",
    )

    sp = add(
        "import-habits",
        cmd_import_habits,
        "log many habit entries from a CSV file (all checked before any is written)",
        "Import habit entries from CSV. The header names the columns, in any order: time (ISO 8601 such as "
        "2026-01-05T21:30, local time unless a zone is given, or Unix seconds) and habit are required; value, unit, "
        "note, intensity and subject are optional (empty: as `legwatch log` defaults). Every row is checked first; "
        "a bad row is reported with its line number and nothing is written. Importing a file again adds nothing.",
    )
    sp.add_argument("file", metavar="FILE.csv")

    sp = add(
        "summary",
        cmd_summary,
        "the morning summary of the latest (or a given) night",
        "The morning summary: sleep window, episodes by kind with times and durations, longest contraction, "
        "periodic-movement index, data coverage and gaps, comparison with your last 14 nights and the habits of "
        "the evening before. --publish also sends it over MQTT (retained, with Home Assistant discovery).",
    )
    sp.add_argument("--night", metavar="DATE", help="the night starting on the evening of DATE (YYYY-MM-DD)")
    sp.add_argument("--format", choices=("text", "json", "html"), default="text", help="output format (default text)")
    sp.add_argument("--output", metavar="FILE", help="write to FILE instead of the terminal")
    sp.add_argument(
        "--publish", action="store_true", help="publish it retained on <prefix>/summary/<subject> (+ HA discovery)"
    )

    sp = add(
        "correlate",
        cmd_correlate,
        "which habits go with fewer or more episodes, with honest statistics",
        "Pair each night with the habits logged from the noon before sleep onset to sleep onset, test each habit "
        "(Mann-Whitney for yes/no habits, Spearman for amounts), correct for testing many habits "
        "(Benjamini-Hochberg) and say plainly what can and cannot be concluded. Not medical advice.",
    )
    sp.add_argument("--since", metavar="DATE", help="only nights from DATE (YYYY-MM-DD)")
    sp.add_argument("--format", choices=("text", "json", "html"), default="text", help="output format (default text)")
    sp.add_argument("--output", metavar="FILE", help="write to FILE instead of the terminal")
    sp.add_argument(
        "--outcome",
        choices=("episodes", "contractions", "leg_movements", "twitches", "plm_index"),
        default="episodes",
        help="what to count per night (default episodes)",
    )

    if only in (None, "experiment"):
        from legwatch import experiment_cli

        experiment_cli.register(sub, common, _config)
        built.append("experiment")
    if only in (None, "report"):
        from legwatch import report_cli

        report_cli.add_arguments(
            add(
                "report",
                cmd_report,
                "the multi-week report to bring to a doctor (PDF, HTML or JSON)",
                report_cli.DESCRIPTION,
            )
        )

    sp = add(
        "status",
        cmd_status,
        "check before bed that tonight will work: config, broker, store, Bluetooth, sensors, monitor",
        "Check the configuration, the MQTT broker, the store, a Bluetooth adapter, each sensor's retained "
        "status (and the last night stored for it) and whether the monitor is storing data; one row each "
        "(ok, warn or fail) with what to do. Stores no data. Exit status 1 when a check fails.",
    )
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")

    sp = add(
        "nights",
        cmd_nights,
        "the stored nights with counts and coverage; `nights delete NIGHT` removes one",
        "List the stored nights (date of the evening, sensor, recording times in the configured time zone, "
        "sleep hours, episodes and cramps during sleep, data coverage %, gaps). `legwatch nights delete NIGHT` "
        "removes a night's points from the store.",
    )
    sp.add_argument("--since", metavar="DATE", help="only nights from the evening of DATE (YYYY-MM-DD)")
    sp.add_argument("--until", metavar="DATE", help="only nights up to the evening of DATE (YYYY-MM-DD)")
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    nsub = sp.add_subparsers(dest="action", metavar="ACTION")
    dp = nsub.add_parser(
        "delete",
        parents=[_common_options(nested=True)],
        help="delete one night's points (asks first; --yes to skip)",
        description="Delete the night starting on the evening of NIGHT (YYYY-MM-DD): its night, episode, "
        "activity and gap points, from InfluxDB or SQLite. Habits stay. Asks on a terminal; --yes does not ask.",
    )
    dp.add_argument("night", metavar="NIGHT", help="the date of the evening the night started (YYYY-MM-DD)")
    dp.add_argument("--sensor", help="only this sensor's recording of that night")
    dp.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    dp.set_defaults(func=cmd_nights_delete)

    sp = add(
        "habits",
        cmd_habits,
        "the logged habit entries with their IDs; `habits delete ID` removes one",
        "List habit entries (last 30 days unless --since) with an ID each, the time in the configured time zone, "
        "the amount with its unit and the note. `legwatch habits delete ID` removes one entry; "
        "`legwatch log undo` removes the one logged last.",
    )
    sp.add_argument("--since", metavar="DATE", help="entries from DATE (YYYY-MM-DD; default 30 days ago)")
    sp.add_argument("--until", metavar="DATE", help="entries up to and including DATE (YYYY-MM-DD)")
    sp.add_argument("--habit", metavar="NAME", help="only this habit")
    sp.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    hsub = sp.add_subparsers(dest="action", metavar="ACTION")
    dp = hsub.add_parser(
        "delete",
        parents=[_common_options(nested=True)],
        help="delete one habit entry by its ID",
        description="Delete the habit entry with ID (8 hex digits, as `legwatch habits` shows) from the store.",
    )
    dp.add_argument("id", metavar="ID")
    dp.set_defaults(func=cmd_habits_delete)

    sp = add("scan", cmd_scan, "list nearby Bluetooth LE sensors that a device profile recognises")
    sp.add_argument("--timeout", type=float, default=8.0, help="seconds to scan (default 8)")

    sp = add(
        "collect",
        cmd_collect,
        "connect to a sensor over Bluetooth LE and publish its stream over MQTT",
        "Stream one sensor all night: reconnect after drop-outs and silent stalls, spool every batch to "
        "disk until the broker acknowledged it (a broker outage or a restart loses nothing). Runs until "
        "SIGINT/SIGTERM.",
    )
    sp.add_argument("--profile", choices=_profile_names(sp), help="device profile")
    sp.add_argument("--address", help="Bluetooth address (default: the first sensor found)")
    sp.add_argument("--sensor", help="sensor id to publish as (default: from the device name)")
    sp.add_argument("--rate", type=float, metavar="HZ", help="sample rate to ask for (default: ~52 Hz per profile)")
    sp.add_argument("--range", type=float, default=8.0, metavar="G", help="full scale in g (default 8)")
    sp.add_argument(
        "--watchdog", type=float, default=10.0, metavar="S", help="reconnect after S seconds without data (default 10)"
    )
    sp.add_argument(
        "--offline-after",
        type=float,
        default=60.0,
        metavar="S",
        help="mark the sensor offline (ends its night in the monitor) after S seconds without a link; "
        "0: at once (default 60)",
    )
    sp.add_argument("--spool-mb", type=float, default=64.0, metavar="MB", help="spool size bound (default 64)")
    sp.add_argument("--spool-fsync", action="store_true", help="fsync every spooled batch (default: atomic rename)")

    sp = add(
        "decode",
        cmd_decode,
        "print what a device profile decodes from one notification (hex)",
        "Decode one BLE notification with a device profile and print "
        '{"samples": [[ax, ay, az], ...]} in g (plus timestamps where the frame has them).',
    )
    sp.add_argument(
        "profile",
        metavar="PROFILE",
        choices=_profile_names(sp),
        help="polar, witmotion, metawear or nus",
    )
    sp.add_argument("hex", metavar="HEX", help="the notification bytes in hex (spaces allowed)")
    sp.add_argument("--factor", type=float, help="Polar: scale factor from the start response")
    sp.add_argument("--rate", type=float, metavar="HZ", help="Polar: sample rate, for the first frame's timestamps")
    sp.add_argument(
        "--previous-ns", type=int, metavar="NS", help="Polar: sensor time (ns since 2000) of the frame before this one"
    )
    sp.add_argument("--model", help="Polar: the device's name or model ('Polar Sense ...': 8-bit frames in G)")
    sp.add_argument(
        "--chip",
        choices=("bmi160", "bmi270", "bma255", "mma8452q"),
        help="MetaWear: the board's accelerometer (default: a packed register names it, 05 bmi270, "
        "12 mma8452q; otherwise a Bosch bmi160/bma255)",
    )
    sp.add_argument(
        "--range",
        type=float,
        metavar="G",
        help="MetaWear: configured range in g, 2/4/8/16 (default: the chip's power-on range, 8 on a bmi270, else 2)",
    )

    sp = add(
        "demo",
        cmd_demo,
        "the whole pipeline on one machine: simulated night -> MQTT -> monitor -> summary",
        "Simulate a night of a shin-worn sensor, publish it through an MQTT broker (an embedded one unless "
        "LEGWATCH_MQTT_URL is set) into the monitor, store the results (a temporary SQLite store unless "
        "LEGWATCH_INFLUX_URL is set; kept in --data-dir DIR when given) and print the morning summary.",
    )
    sp.add_argument("--hours", type=float, default=8.0, help="length of the simulated night, 3-16 (default 8)")
    sp.add_argument("--rate", type=float, default=52.0, help="sample rate in Hz (default 52)")
    sp.add_argument("--seed", type=int, default=7, help="random seed of the simulated night")
    return p if built or only is None else build_parser()


_USER_ERRORS = (
    ("legwatch.contracts.config", "ConfigError"),
    ("legwatch.csvio", "RecordingError"),
    ("legwatch.habits", "HabitError"),
    ("legwatch.summary", "SummaryError"),
    ("legwatch.experiment", "ExperimentError"),
    ("legwatch.correlate", "CorrelateError"),
    ("legwatch.report", "ReportError"),
    ("collector.profiles.base", "ProfileError"),
)
_SERVICE_ERRORS = (
    ("legwatch.mqtt.connection", "BrokerUnavailable"),
    ("legwatch.storage.base", "StoreError"),  # StoreUnavailable is one
)


def _loaded_errors(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(sys.modules[m], c) for m, c in names if m in sys.modules)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # the reader went away (`legwatch detect ... | head`): nothing more to write, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        # Error classes are looked up when one is raised, in the modules the command loaded (an
        # error cannot come from a module never imported): `detect` stays free of paho and rich.
        if isinstance(exc, (UserError, *_loaded_errors(_USER_ERRORS))):
            code = 2
        elif isinstance(exc, _loaded_errors(_SERVICE_ERRORS)):
            code = 1
        else:
            raise
        print(f"legwatch {args.command}: error: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
