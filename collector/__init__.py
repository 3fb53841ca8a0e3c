"""Sensor side: BLE device profiles, connection supervision, MQTT publishing with a disk spool.

May import legwatch.payload and legwatch.config, never detector.
"""
