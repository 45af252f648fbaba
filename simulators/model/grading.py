"""How the warehouse grades received units: a condition (the reason can force one), then a
disposition by item category and condition; some lines are split between two dispositions.
The model's warehouse and the load tests' warehouse users grade with the same rules."""

from __future__ import annotations

import random
from collections.abc import Mapping

from simulators.domain import Category, Condition, ReturnReason
from simulators.model.draws import pick, table
from simulators.model.expected import InspectedUnits
from simulators.scenario import WarehouseModel
from simulators.seed import MasterData


class Grader:
    def __init__(self, warehouse: WarehouseModel, master: MasterData) -> None:
        self.warehouse, self.master = warehouse, master
        self._conditions = table(warehouse.condition_mix)
        self._dispositions = {(category, condition): table(warehouse.disposition_mix(category, condition))
                              for category in Category for condition in Condition}

    def grade(self, rng: random.Random, units: Mapping[str, int], reasons: Mapping[str, ReturnReason]) -> list[InspectedUnits]:
        graded: list[InspectedUnits] = []
        for item_id, quantity in sorted(units.items()):
            reason = reasons[item_id]
            category = self.master.items[item_id].category
            split = quantity > 1 and rng.random() < self.warehouse.split_disposition_rate
            for n in [quantity - 1, 1] if split else [quantity]:
                if reason is ReturnReason.DEFECTIVE and rng.random() < 0.8:
                    condition = Condition.DEFECTIVE
                elif reason is ReturnReason.DAMAGED_IN_TRANSIT and rng.random() < 0.7:
                    condition = Condition.DAMAGED
                else:
                    condition = pick(rng, self._conditions)
                graded.append(InspectedUnits(item_id, n, condition, pick(rng, self._dispositions[(category, condition)])))
        return graded
