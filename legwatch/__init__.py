"""legwatch: the command line, configuration, wire payload, storage, habits, summary and correlation.

May import ``detector`` (the signal core) and ``collector`` (only from the CLI's collect/scan/decode).
"""

__version__ = "0.1.0"
