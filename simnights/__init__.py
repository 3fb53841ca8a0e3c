"""simnights: a second, independent generator of labelled nights from a shin-worn accelerometer.

Written from the physiology of the events and from published descriptions of real recordings (not from
the detector's rules), so that accuracy measured on it is not accuracy fitted to the detector's own
generator. ``generate_night(seed, hours=, rate_hz=, **knobs)`` returns a :class:`detector.synthetic.Night`.

Layering: this package may import only numpy, scipy, the value types ``Night`` and ``TruthEvent`` of
``detector.synthetic`` and ``detector.events.KINDS_COUNTED`` (tests/test_layers.py enforces it). The model,
each event shape and where its numbers come from: ``simnights/README.md``.
"""

from simnights.night import generate_night

__all__ = ["generate_night"]
