"""Signal processing and episode detection for a shin-worn accelerometer.

The core (``events``, ``frames``, ``stream``, ``offline``, ``synthetic``, ``scoring``) imports only
numpy and scipy. ``monitor`` is the MQTT-consuming service; it alone may import ``legwatch``.
"""

from detector.events import KINDS_COUNTED, Episode, Epoch, Gap

__all__ = ["KINDS_COUNTED", "Episode", "Epoch", "Gap"]
