"""zigbee2mqtt detector adapter for estatehub.

:mod:`.payload` parses zigbee2mqtt messages (pure), :mod:`.adapter` subscribes through the
hub, :mod:`.samples` holds real-format payloads, :mod:`.plugin` registers the adapter.
"""
