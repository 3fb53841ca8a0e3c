"""The flags that say how to read a recording (``--units``, ``--time-unit``, ``--tz``), for every
command that reads one. Standard library only: building the parser imports no numpy."""

from __future__ import annotations

import argparse


def add_read_flags(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("reading the file (detected from its content unless given)")
    g.add_argument(
        "--units", metavar="U", help="acceleration unit: g, mg or m/s2 (default: from the header or gravity)"
    )
    g.add_argument(
        "--time-unit", metavar="U", help="numeric timestamps: s, ms, us or ns since the Unix epoch (default: from size)"
    )
    g.add_argument(
        "--tz",
        metavar="ZONE",
        help="zone of local times without one: IANA name, UTC or +HH:MM (default: the configured timezone)",
    )
