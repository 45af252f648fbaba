"""Which delivered order lines customers can still return, and new sales when they run out.

The seeded orders cover the 90 days before the epoch; a long or busy season needs more, as
a real one has: new orders are placed and delivered during it. They are added to the shared
master data, so the ERP and the portal see them as they see the seeded ones.

Orders with units left are indexed by the hour they were delivered, so that finding one
delivered about N days ago, adding a new sale and retiring a fully returned order each cost
O(1) (amortised) however long the season: a sorted list made every new sale an O(n) insert.
Orders too old to be returned even late are dropped from the index (and, once no return of
theirs is still open, from the master data: see :meth:`OrderBook.release`).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from simulators.seed import MasterData, OrderLine, SalesOrder

BUCKET_S = 3600  # one bucket per hour of delivery


class OrderBook:
    def __init__(self, master: MasterData, rng: random.Random, *, prune_after_days: float | None = None) -> None:
        self.master = master
        self.rng = rng
        self._left: dict[str, dict[int, int]] = {}  # order -> line number -> units not yet returned
        self._delivered: dict[str, float] = {}  # order -> delivered, unix s (orders with units left)
        self._buckets: dict[int, list[str]] = {}  # delivery hour -> orders with units left
        self._next = len(master.orders) + 1
        self._customers = list(master.customers)
        self._items = list(master.items.values())
        self._sites = list(master.sites)
        self._seeded = frozenset(master.orders)
        # Virtual mode may forget new sales nobody can return any more (None: keep them all).
        self._prune_after_s = None if prune_after_days is None else prune_after_days * 86_400
        self._open_returns: dict[str, int] = {}  # new sale -> its returns still open
        self._expired: set[str] = set()  # new sales out of reach, waiting for their returns to end
        for order in master.orders.values():
            self._admit(order)
        self._cursor: int | None = min(self._buckets, default=None)  # oldest hour not yet pruned

    def _admit(self, order: SalesOrder) -> None:
        if order.delivered_at is None:
            return
        self._left[order.id] = {line.line_number: line.quantity for line in order.lines}
        delivered = order.delivered_at.timestamp()
        self._delivered[order.id] = delivered
        bucket = int(delivered // BUCKET_S)
        self._buckets.setdefault(bucket, []).append(order.id)

    def pick(self, now: datetime, age_days: float, tolerance_days: float = 0.5) -> SalesOrder:
        """An order delivered about ``age_days`` ago with units left; a new sale when none is."""
        now_s = now.timestamp()
        self._prune(now_s)
        target = now_s - age_days * 86_400
        low, high = target - tolerance_days * 86_400, target + tolerance_days * 86_400
        candidates: list[str] = []
        delivered = self._delivered
        for bucket in range(int(low // BUCKET_S), int(high // BUCKET_S) + 1):
            ids = self._buckets.get(bucket)
            if ids:
                candidates.extend(i for i in ids if low <= delivered[i] <= high)
        if candidates:
            return self.master.orders[self.rng.choice(candidates)]
        return self._new_sale(now - timedelta(days=age_days))

    def _new_sale(self, delivered_at: datetime) -> SalesOrder:
        order_id = f"SO-{self._next:06d}"
        self._next += 1
        items = self.rng.sample(self._items, k=min(len(self._items), self.rng.choice([1, 1, 2, 3])))
        order = SalesOrder(
            id=order_id,
            customer_id=self.rng.choice(self._customers),
            site_id=self.rng.choice(self._sites),
            currency=items[0].price.currency,
            ordered_at=delivered_at - timedelta(days=self.rng.uniform(2, 5)),
            delivered_at=delivered_at,
            lines=[
                OrderLine(line_number=10 * (n + 1), item_id=item.id, quantity=self.rng.choice([1, 1, 1, 2, 3]),
                                          unit_price=item.price)
                for n, item in enumerate(items)
            ],
        )
        self.master.orders[order_id] = order
        self._admit(order)
        return order

    def take(self, order: SalesOrder) -> list[tuple[OrderLine, int]]:
        """The lines and units a customer returns from this order (at least one unit)."""
        left = self._left[order.id]
        open_lines = [l for l in order.lines if left.get(l.line_number)]
        chosen = [l for l in open_lines if self.rng.random() < 0.6] or [self.rng.choice(open_lines)]
        taken = []
        for line in chosen:
            units_left = left[line.line_number]
            units = units_left if self.rng.random() < 0.8 else self.rng.randint(1, units_left)
            left[line.line_number] = units_left - units
            taken.append((line, units))
        if order.id not in self._seeded:  # counted before a retirement could forget the order
            self._open_returns[order.id] = self._open_returns.get(order.id, 0) + 1
        if not any(left.values()):
            self._retire(order.id)
        return taken

    def _retire(self, order_id: str) -> None:
        """Out of the index: nothing left to return (or too old to be returned)."""
        delivered = self._delivered.pop(order_id)
        del self._left[order_id]
        bucket = int(delivered // BUCKET_S)
        ids = self._buckets[bucket]
        ids.remove(order_id)  # a bucket holds an hour's orders: a handful
        if not ids:
            del self._buckets[bucket]
        if order_id not in self._seeded:
            self._expired.add(order_id)
            self._forget_if_done(order_id)

    def release(self, order_id: str) -> None:
        """A return of this order has ended (virtual mode forgets new sales nobody needs)."""
        n = self._open_returns.get(order_id)
        if n is None:
            return
        if n > 1:
            self._open_returns[order_id] = n - 1
            return
        del self._open_returns[order_id]
        self._forget_if_done(order_id)

    def _forget_if_done(self, order_id: str) -> None:
        if self._prune_after_s is not None and order_id in self._expired and order_id not in self._open_returns:
            self._expired.discard(order_id)
            self.master.orders.pop(order_id, None)

    def _prune(self, now_s: float) -> None:
        """Drop from the index orders delivered too long ago for any request (late ones included)."""
        if self._prune_after_s is None or self._cursor is None:
            return
        horizon = math.floor((now_s - self._prune_after_s) / BUCKET_S)
        while self._cursor < horizon:  # hour by hour: O(season length) over the whole run
            for order_id in list(self._buckets.get(self._cursor, ())):
                self._retire(order_id)
            self._cursor += 1
