"""legwatch: watching a sleeping person's legs, from the wire contracts up to the command line.

Subpackages are the layers below the application, each importing only those below it:
``contracts`` (wire payload, topics, status messages, configuration) with ``files`` (atomic
file replacement), ``mqtt`` (the one MQTT
connection wrapper, the demo's embedded broker), ``storage`` (InfluxDB and SQLite behind one
interface, the InfluxDB schema), ``monitor`` (the detector service). The modules at this level are
the application: ``cli`` (every ``legwatch`` command), ``demo``, ``replay``, ``habits`` (the habit
rules; the monitor uses them), ``summary``, ``correlate``, ``homeassistant``, ``morning`` (what
runs once a night is stored), ``csvio``, ``report`` (the doctor's multi-week report, rendered by
``report_pdf``, ``report_html`` with ``report_charts`` and ``report_text``), ``experiment`` (N-of-1
plans in the store), ``experiment_result`` (their randomization test), ``experiment_publish``
(tonight's assignment over MQTT, a periodic task of the monitor). They may import everything below, ``detector`` and
``collector``; nothing below imports them (tests/test_layers.py checks the whole graph).
"""

__version__ = "0.1.0"
