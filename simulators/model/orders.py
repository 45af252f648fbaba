"""Which delivered order lines customers can still return, and new sales when they run out.

The seeded orders cover the 90 days before the epoch; a long or busy season needs more, as
a real one has: new orders are placed and delivered during it. They are added to the shared
master data, so the ERP and the portal see them as they see the seeded ones.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from simulators.seed import MasterData, OrderLine, SalesOrder


class OrderBook:
    def __init__(self, master: MasterData, rng: random.Random) -> None:
        self.master = master
        self.rng = rng
        self._left: dict[tuple[str, int], int] = {}  # (order, line) -> units not yet returned
        self._pool: list[str] = []  # orders with units left, in no particular order
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
        self._pool.append(order.id)

    def pick(self, now: datetime, min_age_days: float, max_age_days: float) -> SalesOrder:
        """A delivered order between the two ages with units left; a new sale when none is found."""
        for _ in range(12):
            if not self._pool:
                break
            i = self.rng.randrange(len(self._pool))
            order = self.master.orders[self._pool[i]]
            if not any(self._left.get((order.id, l.line_number)) for l in order.lines):
                self._pool[i] = self._pool[-1]
                self._pool.pop()
                continue
            age = (now - order.delivered_at).total_seconds() / 86_400
            if min_age_days <= age <= max_age_days:
                return order
        return self._new_sale(now - timedelta(days=self.rng.uniform(min_age_days, max_age_days)))

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
