"""Object replication (``mc mirror`` semantics): copy what is new or changed from one bucket to another."""

from __future__ import annotations

from akko_dr.ports import ObjectStore


def mirror(store: ObjectStore, source: str, destination: str, prefix: str = "") -> list[str]:
    """Copy every object of ``source`` missing or different (by size) in ``destination``; return the keys."""
    there = {o.key: o.size for o in store.list(destination, prefix)}
    copied = []
    for obj in store.list(source, prefix):
        if there.get(obj.key) != obj.size:
            store.put_bytes(destination, obj.key, store.read(source, obj.key))
            copied.append(obj.key)
    return copied
