"""Signal processing and episode detection for a shin-worn accelerometer.

The core (``events``, ``frames``, ``features``, ``thresholds``, ``episodes``, ``epochs``,
``posture``, ``stream``, ``offline``, ``synthetic``, ``scoring``) imports only numpy and scipy.
``monitor`` (the MQTT-consuming service) and ``durability`` (its journal, checkpoints and outbox)
may import ``legwatch``.
"""

from detector.events import KINDS_COUNTED, Episode, Epoch, Gap

__all__ = ["KINDS_COUNTED", "Episode", "Epoch", "Gap"]
