"""What the application does once the monitor has stored a night: the morning summary, published
retained over MQTT with Home Assistant discovery. Registered on the monitor by the command line and
the demo (``Monitor.on_night_stored(publish_summary, "summaries")``), so the monitor imports none
of the summary or Home Assistant code.
"""

from __future__ import annotations

from legwatch import homeassistant, summary
from legwatch.monitor.hooks import NightStored


def publish_summary(event: NightStored) -> bool:
    """Build the night's summary from the store and publish it; False when there is nothing to do
    (no connection yet, or a night without data). ``StoreUnavailable`` makes the monitor retry."""
    if event.connection is None or event.night.start is None:
        return False
    # imported here: the analysis pulls in scipy, which must not slow the monitor's start (it subscribes after)
    from legwatch.experiment_result import annotate

    s = annotate(event.store, summary.build(event.store, event.subject, sensor=event.sensor, start=event.night.start))
    homeassistant.publish_summary(event.connection, event.prefix, s, wait=5.0)
    return True
