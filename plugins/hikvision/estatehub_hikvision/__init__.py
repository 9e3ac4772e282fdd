"""Hikvision ISAPI adapters (ANPR gates) for estatehub.

:mod:`.anpr` parses the camera's pushes (pure), :mod:`.gate` is the parking gate adapter,
:mod:`.samples` builds pushes in the real format for demos and benchmarks, and
:mod:`.plugin` registers the adapter with the hub.
"""
