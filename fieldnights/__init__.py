"""fieldnights: a third, independent generator of labelled nights for legwatch (issue 14).

Written from physiology and published descriptions of real recordings (sources in README.md), not
from the detector's rules, so that accuracy can be reported on nights nobody tuned on.

What lives here (each module small, named for what it holds):

* ``knobs``     -- every setting of a night, drawn from the seed unless given (``Knobs.resolve``);
* ``schedule``  -- non-overlapping placement of activities on the night's time line;
* ``plan``      -- the night's structure: lying awake, sleep cycles, what happens when;
* ``canvas``    -- the fine time grid the body is drawn on (shin angles, linear accelerations);
* ``bed``       -- shapes of movements in bed: twitches, leg movements, roll-overs, cramps, partner;
* ``upright``   -- getting up: sitting on the edge of the bed, standing, gait, lying back;
* ``body``      -- shin angles and accelerations to the specific force in the shin's frame;
* ``sensor``    -- mounting rotation, anti-alias filter, decimation, noise, range, quantisation;
* ``clock``     -- sample timestamps with jitter and drift, and truth times on the same clock;
* ``periodic``  -- the WASM periodic-series rule for the truth flags;
* ``night``     -- ``generate_night``: the above put together into a ``detector.synthetic.Night``.

Imports: numpy, scipy, a little stdlib, and from the project only ``detector.synthetic.Night``,
``detector.synthetic.TruthEvent`` and ``detector.events.KINDS_COUNTED`` (tests/test_layers.py checks it;
nothing in legwatch, detector or collector may import this package).
"""

from __future__ import annotations

from fieldnights.night import generate_night

__all__ = ["generate_night"]
