"""Server-sent event streams: one Redis subscription per API process, fanned out (:mod:`api.streams.hub`).

The task event stream itself (record, numbered state changes, progress,
Last-Event-ID resume, the per-process cap) is :mod:`api.resources.events`.
"""
