"""Signal processing and episode detection for a shin-worn accelerometer.

Pure: arrays and explicit state in, episodes out. Every module here imports only numpy, scipy
and ``detector`` itself, never ``legwatch`` or ``collector``. The stages, in the order a sample
goes through them: ``frames`` (fixed 0.1 s frames on absolute time) -> ``features`` -> ``thresholds``
-> ``episodes`` (twitches, leg movements, contractions, periodic series) and ``epochs`` (per-epoch
activity, the sleep window), with ``posture`` (the shin's axis); ``stream`` runs them batch by batch
(``StreamDetector``, whose state is plain data: ``state()``/``from_state()``), ``offline`` over a
whole recording. ``synthetic`` generates labelled nights and ``scoring`` scores detections against
them.
"""

from detector.events import KINDS_COUNTED, Episode, Epoch, Gap

__all__ = ["KINDS_COUNTED", "Episode", "Epoch", "Gap"]
