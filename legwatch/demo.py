"""``legwatch demo``: the whole pipeline on one machine with nothing installed beyond the package.

A simulated night (the labelled generator in ``detector.synthetic``) is published by the real
replay code over MQTT (an embedded amqtt broker unless one is configured) into the real monitor,
which stores into SQLite in a temporary folder (or, with ``--data-dir`` / ``LEGWATCH_DATA_DIR``, into
that directory's store, which is kept; or the configured InfluxDB); then the morning summary is read
back from the store and printed, beside what the simulation planted.
"""

from __future__ import annotations

import shlex
import tempfile
import time
from collections import Counter

from legwatch.contracts.config import Config

SENSOR = "demo-shin"
SUBJECT = "demo"
#: The shortest night that has a sleep window: the simulated night starts with lying awake in bed and the
#: detector needs 30 min of rest. Measured: ``legwatch demo --hours H --rate 25`` finds none at 0.5, 1, 1.5
#: and 2 h; offline detection of the same simulated nights finds 62 of 125 min of sleep at 2.5 h (seed 7,
#: the default) and a sleep window close to the planted one at 3 h for seeds 1-14.
MIN_HOURS = 3.0
MAX_HOURS = 16.0


def run_demo(cfg: Config, *, hours: float, rate: float, seed: int, console, subject: str | None = None) -> int:
    """Run the demo; ``subject`` (``--subject``) defaults to ``SUBJECT``. With a configured ``data_dir``
    (``--data-dir`` or ``LEGWATCH_DATA_DIR``) the results go into that directory's store and stay."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from detector.synthetic import generate_night
    from legwatch import summary
    from legwatch.errors import UserError
    from legwatch.monitor.service import Monitor
    from legwatch.morning import publish_summary
    from legwatch.mqtt.embedded_broker import EmbeddedBroker
    from legwatch.replay import batches, replay
    from legwatch.storage import open_store

    if not hours >= MIN_HOURS:
        raise UserError(
            f"--hours {hours:g} is too short for a sleep window (the simulated night starts awake in bed): "
            f"use --hours {MIN_HOURS:g} or more"
        )
    if hours > MAX_HOURS:
        raise UserError(f"--hours must be at most {MAX_HOURS:g}")
    if not 20 <= rate <= 250:
        raise UserError("--rate must be between 20 and 250 Hz")
    t_start = time.monotonic()
    broker = None
    url, protocol = cfg["mqtt.url"], cfg["mqtt.protocol"]
    subject = subject or SUBJECT
    influx = bool(cfg["influx.url"])
    keep_dir = cfg.values["data_dir"] and not influx  # the store stays for `legwatch summary --data-dir`
    if keep_dir:
        cfg.make_dir()  # a data_dir that cannot be made: one line, before anything runs
    tmp = tempfile.TemporaryDirectory(prefix="legwatch-demo-")
    values = dict(cfg.values)
    values.update({"subject": subject, "monitor.sensors": SENSOR})
    values["data_dir"] = tmp.name  # the monitor's state (and the store unless kept or InfluxDB is configured)
    store_values = dict(values, data_dir=cfg.values["data_dir"] if keep_dir else tmp.name)
    try:
        with Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as prog:
            task = prog.add_task("simulating a night", total=1)
            night = generate_night(seed, hours=hours, rate_hz=rate)
            prog.update(task, completed=1)
            if not url:
                task = prog.add_task("starting an embedded MQTT broker", total=1)
                broker = EmbeddedBroker().start()
                url, protocol = broker.url, 3
                prog.update(task, completed=1)
            values.update({"mqtt.url": url, "mqtt.protocol": protocol})
            run_cfg = Config(values=values, subjects={}, source=cfg.source)
            store = open_store(Config(values=store_values, subjects={}, source=cfg.source))
            monitor = Monitor(run_cfg, store, client_id="legwatch-demo-monitor", exit_after_nights=1)
            monitor.on_night_stored(publish_summary, "summaries")
            monitor.start()
            n_batches = sum(1 for _ in batches(night.t))
            pub = prog.add_task("replay -> MQTT", total=n_batches)
            det = prog.add_task("monitor: detect + store", total=n_batches)

            def progress(done: int, total: int) -> None:
                prog.update(pub, completed=done)
                # keep the monitor's backlog short: the embedded broker gives up on
                # acknowledgements that take over 5 s
                while done - monitor.stats["batches"] > 400 and not monitor.done.is_set():
                    time.sleep(0.02)
                prog.update(det, completed=monitor.stats["batches"])

            replay(
                night.t,
                night.xyz,
                url=url,
                sensor=SENSOR,
                prefix=run_cfg["mqtt.topic_prefix"],
                protocol=protocol,
                progress=progress,
            )
            deadline = time.monotonic() + 600
            while not monitor.done.wait(0.2):
                prog.update(det, completed=monitor.stats["batches"])
                if time.monotonic() > deadline:
                    raise RuntimeError("the monitor did not finish the night within 10 minutes")
            prog.update(det, completed=n_batches)
        s = summary.build(store, subject)
        if keep_dir:
            summary.render_text(s, console)
        else:
            summary.render_text(s, console, more_hint="run the demo with --data-dir DIR to keep them")
        truth = Counter(e.kind for e in night.episodes() if night.sleep_start <= e.start < night.sleep_end)
        console.print(
            "[dim]Planted by the simulation during sleep: "
            + ", ".join(f"{k} {truth.get(k, 0)}" for k in ("twitch", "leg_movement", "contraction"))
            + f". Pipeline time {time.monotonic() - t_start:.1f} s; "
            + f"{monitor.stats['samples']} samples in {monitor.stats['batches']} MQTT batches.[/dim]"
        )
        if influx:
            console.print(f"Results were written to InfluxDB under subject {subject!r}.")
        elif keep_dir:
            cmd = f"legwatch summary --data-dir {shlex.quote(str(cfg.data_dir))} --subject {shlex.quote(subject)}"
            console.print(
                f"Stored in {cfg.data_dir}; read it again with `{cmd} --format json` (or --format html --output FILE).",
                markup=False,
                highlight=False,
            )
        else:
            console.print(
                "The store was temporary and is gone; to keep it for `legwatch summary --format json|html`, "
                "run `legwatch demo --data-dir DIR`.",
                markup=False,
                highlight=False,
            )
        store.close()
        return 0
    finally:
        if broker is not None:
            broker.stop()
        tmp.cleanup()
