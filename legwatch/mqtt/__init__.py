"""MQTT plumbing shared by the collector, replay, the monitor and summary publishing: one
connection wrapper over paho-mqtt (``connection``) and the embedded broker of ``legwatch demo``
(``embedded_broker``).

May import ``legwatch.contracts`` (and paho-mqtt, amqtt); nothing above it.
"""
