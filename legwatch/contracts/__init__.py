"""The contracts every part of legwatch and other people's software rely on, at the bottom of the
import graph: the wire payload of sample batches (``payload``), the MQTT topic names (``topics``),
the status messages of sensors (``status``), the end-to-end acknowledgements (``ack``) and the
configuration (``config``). Documented in the README; changed only deliberately.

May import the standard library, numpy and platformdirs; nothing else of the repository.
"""
