"""The monitor service (``legwatch monitor``): MQTT sample batches in, episodes out.

One sample batch, in the order it passes these modules: ``service`` (the MQTT callback queues it;
the worker journals, routes, delivers, acknowledges), ``journal`` (appended and fsynced first),
``router`` (pure: the payload decoded, the sensor's ``detector.stream.StreamDetector`` fed,
points and events out), ``delivery`` (the store in one request, or ``outbox`` while it is away),
then the acknowledgement (to the broker, and end to end to the sender: ``acks`` and ``sequence``
keep each stream contiguous and say what to ask again). Between batches ``checkpointer`` saves a
few streams' state (``checkpoint_files`` on disk, ``state_file`` the format), ``hooks`` run what
the application registered for a stored night, and ``progress`` logs where each sensor stands.

May import ``detector``, ``legwatch.contracts``, ``legwatch.files``, ``legwatch.mqtt``,
``legwatch.storage`` and ``legwatch.habits`` (the habit rules); never the command line, the summary
or Home Assistant: what happens once a night is stored is a hook the application registers.
"""
