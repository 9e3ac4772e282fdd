"""MQTT topic names and filters: validation, matching, and the subscription index.

The index is what keeps dispatch cheap when an estate has thousands of devices: a message's
topic is looked up in a dict of exact filters plus a per-level trie of wildcard filters, and
the answer is cached per topic, so the common case (a device topic seen before) costs one
dict lookup however many subscriptions there are.

Rules follow MQTT 3.1.1 §4.7: ``+`` matches exactly one level, ``#`` matches the parent
level and everything below it and must be last, and topics that start with ``$`` (broker
internals such as ``$SYS``) are never matched by a filter that starts with a wildcard.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from ..exceptions import TransportError

MAX_TOPIC_BYTES = 65535
"""MQTT strings carry a two-byte length prefix, so no topic or filter can be longer."""

_MATCH_CACHE_LIMIT = 8192
"""Topics remembered by :class:`TopicIndex`; past this the cache starts over.

An estate has a bounded set of device topics, but a misbehaving publisher could invent new
ones forever; clearing (rather than growing) keeps memory flat in that case.
"""

ItemT = TypeVar("ItemT")


class InvalidTopicError(TransportError):
    """A topic name or topic filter breaks the MQTT rules; :attr:`reason` says which one."""

    def __init__(self, kind: str, value: str, reason: str) -> None:
        super().__init__(f"invalid MQTT {kind} {value!r}: {reason}")
        self.kind = kind
        self.value = value
        self.reason = reason


def _check_common(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidTopicError(kind, repr(value), f"must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidTopicError(kind, value, "must not be empty")
    if "\x00" in value:
        raise InvalidTopicError(kind, value, "must not contain the NUL character")
    if len(value) * 4 > MAX_TOPIC_BYTES and len(value.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise InvalidTopicError(
            kind, value[:40] + "…", f"is longer than {MAX_TOPIC_BYTES} bytes of UTF-8"
        )
    return value


def validate_topic(topic: str) -> None:
    """Check a topic name you publish to; raises :class:`InvalidTopicError`.

    A topic name is concrete: it may not contain the wildcards ``+`` or ``#``.
    """
    _check_common("topic", topic)
    if "+" in topic or "#" in topic:
        raise InvalidTopicError(
            "topic", topic, "wildcards '+' and '#' are only allowed in subscription filters"
        )


def validate_filter(topic_filter: str) -> None:
    """Check a subscription filter; raises :class:`InvalidTopicError`.

    ``+`` and ``#`` must each fill a whole level, and ``#`` must be the last level.
    """
    _check_common("topic filter", topic_filter)
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for position, level in enumerate(levels):
        if "#" in level:
            if level != "#":
                raise InvalidTopicError(
                    "topic filter", topic_filter, f"'#' must fill a whole level, not {level!r}"
                )
            if position != last:
                raise InvalidTopicError(
                    "topic filter", topic_filter, "'#' is only allowed as the last level"
                )
        elif "+" in level and level != "+":
            raise InvalidTopicError(
                "topic filter", topic_filter, f"'+' must fill a whole level, not {level!r}"
            )


def is_wildcard(topic_filter: str) -> bool:
    """True when the filter contains ``+`` or ``#``."""
    return "+" in topic_filter or "#" in topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """True when ``topic`` is matched by ``topic_filter`` (both assumed valid)."""
    if topic_filter == topic:
        return True
    if not is_wildcard(topic_filter):
        return False
    filter_levels = topic_filter.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    topic_levels = topic.split("/")
    for position, level in enumerate(filter_levels):
        if level == "#":
            # "a/#" also matches "a" itself: '#' includes the parent level.
            return True
        if position >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[position]:
            return False
    return len(filter_levels) == len(topic_levels)


class _Entry(Generic[ItemT]):
    """One item registered under one filter; ``order`` fixes the delivery order."""

    __slots__ = ("item", "order")

    def __init__(self, order: int, item: ItemT) -> None:
        self.order = order
        self.item = item


class _Node(Generic[ItemT]):
    """One level of the wildcard trie."""

    __slots__ = ("children", "here", "rest")

    def __init__(self) -> None:
        self.children: dict[str, _Node[ItemT]] = {}  # "+" is just another key here
        self.here: list[_Entry[ItemT]] | None = None  # filters that end at this level
        self.rest: list[_Entry[ItemT]] | None = None  # the filter "<this level>/#"


class TopicIndex(Generic[ItemT]):
    """Items (subscriptions) registered under topic filters, found by topic.

    :meth:`match` returns the items of every filter that matches a topic, in the order they
    were added. Exact filters live in a dict, wildcard filters in a per-level trie, and each
    topic's answer is cached until the next :meth:`add` or :meth:`discard`.
    """

    def __init__(self) -> None:
        self._by_filter: dict[str, list[_Entry[ItemT]]] = {}
        self._exact: dict[str, list[_Entry[ItemT]]] = {}
        self._root: _Node[ItemT] = _Node()
        self._wildcards = 0
        self._cache: dict[str, tuple[ItemT, ...]] = {}
        self._next_order = 0

    def __len__(self) -> int:
        """The number of registered items (not filters)."""
        return sum(len(entries) for entries in self._by_filter.values())

    def filters(self) -> list[str]:
        """Every filter that has at least one item, in the order first added."""
        return list(self._by_filter)

    def items_for(self, topic_filter: str) -> list[ItemT]:
        """The items registered under exactly this filter."""
        return [entry.item for entry in self._by_filter.get(topic_filter, ())]

    def __iter__(self) -> Iterator[tuple[str, ItemT]]:
        """(filter, item) pairs in the order added."""
        entries = [
            (entry.order, topic_filter, entry.item)
            for topic_filter, bucket in self._by_filter.items()
            for entry in bucket
        ]
        for _, topic_filter, item in sorted(entries, key=lambda row: row[0]):
            yield topic_filter, item

    def add(self, topic_filter: str, item: ItemT) -> bool:
        """Register ``item`` under a (valid) filter; True if the filter is new."""
        self._cache.clear()
        entry = _Entry(self._next_order, item)
        self._next_order += 1
        bucket = self._by_filter.get(topic_filter)
        if bucket is not None:
            bucket.append(entry)
            return False
        bucket = [entry]
        self._by_filter[topic_filter] = bucket
        if not is_wildcard(topic_filter):
            self._exact[topic_filter] = bucket
            return True
        self._wildcards += 1
        node = self._root
        levels = topic_filter.split("/")
        for level in levels[:-1]:
            node = node.children.setdefault(level, _Node())
        if levels[-1] == "#":
            node.rest = bucket
        else:
            node = node.children.setdefault(levels[-1], _Node())
            node.here = bucket
        return True

    def discard(self, topic_filter: str, item: ItemT) -> bool:
        """Remove one registration of ``item``; True if the filter has no items left.

        Removing something that is not registered is a no-op that returns False.
        """
        bucket = self._by_filter.get(topic_filter)
        if bucket is None:
            return False
        for position, entry in enumerate(bucket):
            if entry.item is item:
                del bucket[position]
                break
        else:
            return False
        self._cache.clear()
        if bucket:
            return False
        del self._by_filter[topic_filter]
        if not is_wildcard(topic_filter):
            del self._exact[topic_filter]
            return True
        self._wildcards -= 1
        self._prune(topic_filter.split("/"))
        return True

    def _prune(self, levels: list[str]) -> None:
        path: list[tuple[_Node[ItemT], str]] = []
        node = self._root
        for level in levels[:-1]:
            path.append((node, level))
            node = node.children[level]
        if levels[-1] == "#":
            node.rest = None
        else:
            path.append((node, levels[-1]))
            node.children[levels[-1]].here = None
        # Drop nodes that lead nowhere any more, deepest first.
        for parent, level in reversed(path):
            child = parent.children[level]
            if child.children or child.here is not None or child.rest is not None:
                break
            del parent.children[level]

    def match(self, topic: str) -> tuple[ItemT, ...]:
        """Items of every filter that matches ``topic``, in the order they were added."""
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        found: list[_Entry[ItemT]] = []
        exact = self._exact.get(topic)
        if exact:
            found.extend(exact)
        if self._wildcards:
            levels = topic.split("/")
            self._walk(self._root, levels, 0, found, topic.startswith("$"))
        if len(found) > 1:
            found.sort(key=lambda entry: entry.order)
        result = tuple(entry.item for entry in found)
        if len(self._cache) >= _MATCH_CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = result
        return result

    def _walk(
        self,
        node: _Node[ItemT],
        levels: list[str],
        depth: int,
        found: list[_Entry[ItemT]],
        system_topic: bool,
    ) -> None:
        # '#' at this node matches the parent level and everything below it, but a
        # wildcard in the first level never matches a '$' topic.
        if node.rest and not (system_topic and depth == 0):
            found.extend(node.rest)
        if depth == len(levels):
            return
        level = levels[depth]
        last = depth + 1 == len(levels)
        child = node.children.get(level)
        if child is not None:
            if last:
                if child.here:
                    found.extend(child.here)
                if child.rest:
                    found.extend(child.rest)
            else:
                self._walk(child, levels, depth + 1, found, system_topic)
        if system_topic and depth == 0:
            return
        plus = node.children.get("+")
        if plus is not None:
            if last:
                if plus.here:
                    found.extend(plus.here)
                if plus.rest:
                    found.extend(plus.rest)
            else:
                self._walk(plus, levels, depth + 1, found, system_topic)
