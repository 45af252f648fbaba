"""Which delivered order lines customers can still return, and new sales when they run out.

The seeded orders cover the 90 days before the epoch; a long or busy season needs more, as
a real one has: new orders are placed and delivered during it. They are added to the shared
master data, so the ERP and the portal see them as they see the seeded ones.
"""

from __future__ import annotations

import bisect
import random
from datetime import datetime, timedelta

from simulators.seed import MasterData, OrderLine, SalesOrder


class OrderBook:
    def __init__(self, master: MasterData, rng: random.Random) -> None:
        self.master = master
        self.rng = rng
        self._left: dict[tuple[str, int], int] = {}  # (order, line) -> units not yet returned
        self._by_delivery: list[tuple[float, str]] = []  # (delivered, unix s; order id), sorted
        self._next = len(master.orders) + 1
        self._customers = list(master.customers)
        self._items = list(master.items.values())
        self._sites = list(master.sites)
        for order in master.orders.values():
            self._admit(order)

    def _admit(self, order: SalesOrder) -> None:
        if order.delivered_at is None:
            return
        for line in order.lines:
            self._left[(order.id, line.line_number)] = line.quantity
        bisect.insort(self._by_delivery, (order.delivered_at.timestamp(), order.id))

    def pick(self, now: datetime, age_days: float, tolerance_days: float = 0.5) -> SalesOrder:
        """An order delivered about ``age_days`` ago with units left; a new sale when none is."""
        target = (now - timedelta(days=age_days)).timestamp()
        low = bisect.bisect_left(self._by_delivery, (target - tolerance_days * 86_400, ""))
        high = bisect.bisect_right(self._by_delivery, (target + tolerance_days * 86_400, "~"))
        candidates = [order_id for _, order_id in self._by_delivery[low:high] if self._has_units(order_id)]
        if candidates:
            return self.master.orders[self.rng.choice(candidates)]
        return self._new_sale(now - timedelta(days=age_days))

    def _has_units(self, order_id: str) -> bool:
        return any(self._left.get((order_id, l.line_number)) for l in self.master.orders[order_id].lines)

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
                OrderLine(line_number=10 * (n + 1), item_id=item.id, quantity=self.rng.choice([1, 1, 1, 2, 3]), unit_price=item.price)
                for n, item in enumerate(items)
            ],
        )
        self.master.orders[order_id] = order
        self._admit(order)
        return order

    def take(self, order: SalesOrder) -> list[tuple[OrderLine, int]]:
        """The lines and units a customer returns from this order (at least one unit)."""
        open_lines = [l for l in order.lines if self._left.get((order.id, l.line_number))]
        chosen = [l for l in open_lines if self.rng.random() < 0.6] or [self.rng.choice(open_lines)]
        taken = []
        for line in chosen:
            left = self._left[(order.id, line.line_number)]
            units = left if self.rng.random() < 0.8 else self.rng.randint(1, left)
            self._left[(order.id, line.line_number)] = left - units
            taken.append((line, units))
        return taken
