"""The monitor service (``legwatch monitor``): MQTT sample batches in, episodes out.

May import ``detector``, ``legwatch.contracts``, ``legwatch.files``, ``legwatch.mqtt``, ``legwatch.storage`` and
``legwatch.habits`` (the habit rules); never the command line, the summary or Home Assistant: what
happens once a night is stored is a hook the application registers.
"""
