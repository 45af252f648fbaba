"""When steps: what happens in the world, and running it until it settles."""

from __future__ import annotations

from simulators.bdd import vocabulary as v
from simulators.bdd.steps.registry import step
from simulators.bdd.world import WorldUnderTest


@step("when", "{n:Number} {returns:Returns} {be:Be} requested", example="When 12 returns are requested")
def requested(returns_world: WorldUnderTest, n: str, returns: str, be: str) -> None:
    """Customers request this many returns over the request days (demand keeps its daily shape)."""
    wanted = v.count(n, "returns requested")
    days = returns_world.get("volumes.days", 1)
    returns_world.set("volumes.max_returns", wanted)
    # Enough demand that the count is reached inside the days; the cap stops it there.
    returns_world.set("volumes.returns_per_day", max(returns_world.get("volumes.returns_per_day", 0), 2.5 * wanted / days))


@step("when", "the world settles", example="When the world settles")
def settles(returns_world: WorldUnderTest) -> None:
    """Run the world live against the integration layer until every return has ended and every
    delivery was answered, with faults healed; then the oracle reconciles. The first Then step
    does this too when no When step did."""
    returns_world.settle()
