"""Sensor side: BLE device profiles, connection supervision, MQTT publishing with a disk spool.

May import legwatch.contracts.payload and legwatch.contracts.config, never detector.
"""
