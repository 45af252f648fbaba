"""Deterministic master data: customers, items, vendors, sites, sales orders and the return policy.

Every fake system is built from the same :class:`MasterData`, so the portal's orders are the
ERP's orders and the WMS's sites are the ERP's sites. The same seed gives the same data, byte
for byte; all randomness flows from ``random.Random(seed)`` and a Faker seeded with it.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from faker import Faker
from pydantic import BaseModel, ConfigDict, Field

from simulators.domain import AccountStatus, Category, Condition, Money, ReturnReason

# Simulated time starts here unless a scenario says otherwise: the day after Christmas,
# when post-holiday returns begin (26 December runs at about 3.3x an average day).
DEFAULT_EPOCH = datetime(2026, 12, 26, tzinfo=UTC)
CURRENCY = "USD"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Address(_Frozen):
    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str = Field(min_length=2, max_length=50, description="State or region code")
    postal_code: str = Field(min_length=3, max_length=12)
    country: str = Field("US", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class Customer(_Frozen):
    id: str = Field(examples=["CUST-00001"])
    name: str
    email: str
    address: Address
    account_status: AccountStatus


class Vendor(_Frozen):
    id: str = Field(examples=["VEND-001"])
    name: str


class Item(_Frozen):
    id: str = Field(description="SKU", examples=["SKU-AP1001"])
    name: str
    category: Category
    price: Money
    vendor_id: str
    serial_controlled: bool = Field(description="Inspection must record one serial number per unit")
    weight_g: int


class Site(_Frozen):
    id: str = Field(examples=["WH-EAST"])
    name: str
    address: Address


class OrderLine(_Frozen):
    line_number: int
    item_id: str
    quantity: int
    unit_price: Money


class SalesOrder(_Frozen):
    id: str = Field(examples=["SO-000001"])
    customer_id: str
    site_id: str = Field(description="Warehouse the order shipped from; returns go back there")
    currency: str
    ordered_at: datetime
    delivered_at: datetime | None = Field(description="None while the order is still in transit")
    lines: list[OrderLine]
    order_type: str = "standard"
    replacement_for: str | None = Field(default=None, description="RMA id, for exchange orders")


class ReturnPolicy(_Frozen):
    """The merchant's return policy as the returns portal publishes it."""

    window_days: int = Field(30, description="Days after delivery in which a return may be requested")
    restocking_fee_bps: int = Field(1500, description="Fee in basis points of the line value (15%)")
    restocking_fee_conditions: list[Condition] = Field(
        default=[Condition.OPENED],
        description="Conditions the restocking fee applies to",
    )
    fee_exempt_reasons: list[ReturnReason] = Field(
        default=[
            ReturnReason.DEFECTIVE,
            ReturnReason.WRONG_ITEM,
            ReturnReason.DAMAGED_IN_TRANSIT,
            ReturnReason.NOT_AS_DESCRIBED,
        ],
        description="Merchant-fault reasons: never charged a restocking fee",
    )
    refund_percent_by_condition: dict[Condition, int] = Field(
        default={Condition.NEW: 100, Condition.OPENED: 100, Condition.DAMAGED: 50, Condition.DEFECTIVE: 100},
        description="Share of the line value refunded, by the condition found at inspection",
    )
    rounding: str = Field(
        "half_up",
        description="Refund and fee are computed in integer cents, each rounded half up",
    )


class SeedConfig(_Frozen):
    """How much master data to make; the defaults suit functional tests and the baseline."""

    seed: int = 0
    customers: int = Field(200, ge=1)
    vendors: int = Field(12, ge=1)
    items: int = Field(120, ge=1)
    sites: int = Field(3, ge=1, le=6)
    orders: int = Field(1500, ge=1)
    on_hold_share: float = Field(0.03, ge=0, le=1, description="Customers on credit or fraud hold")
    undelivered_share: float = Field(0.05, ge=0, le=1, description="Orders still in transit at the epoch")
    epoch: datetime = DEFAULT_EPOCH


class MasterData(_Frozen):
    config: SeedConfig
    customers: dict[str, Customer]
    vendors: dict[str, Vendor]
    items: dict[str, Item]
    sites: dict[str, Site]
    orders: dict[str, SalesOrder]
    policy: ReturnPolicy


_SITES = [
    ("WH-EAST", "East DC", "Columbus", "OH", "43219"),
    ("WH-WEST", "West DC", "Reno", "NV", "89502"),
    ("WH-SOUTH", "South DC", "Dallas", "TX", "75241"),
    ("WH-NORTH", "North DC", "Minneapolis", "MN", "55413"),
    ("WH-CENTRAL", "Central DC", "Kansas City", "MO", "64120"),
    ("WH-ATL", "Atlanta DC", "Atlanta", "GA", "30336"),
]

# (category, SKU infix, share of the catalogue, price range in cents)
_CATEGORIES = [
    (Category.APPAREL, "AP", 0.45, (1500, 12000)),
    (Category.ELECTRONICS, "EL", 0.20, (2500, 90000)),
    (Category.HOME, "HO", 0.20, (1200, 25000)),
    (Category.BEAUTY, "BE", 0.15, (600, 8000)),
]


def _address(fake: Faker) -> Address:
    return Address(
        street=fake.street_address(),
        city=fake.city(),
        region=fake.state_abbr(include_territories=False),
        postal_code=fake.postcode(),
    )


def _items(rng: random.Random, fake: Faker, count: int, vendors: list[Vendor]) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for n in range(count):
        category, infix, _share, (low, high) = rng.choices(_CATEGORIES, weights=[c[2] for c in _CATEGORIES])[0]
        price = rng.randrange(low, high, 100) - 1  # prices end in .99
        sku = f"SKU-{infix}{1001 + n}"
        items[sku] = Item(
            id=sku,
            name=f"{fake.color_name()} {fake.word().capitalize()} {category.value.title()}",
            category=category,
            price=Money(amount=price, currency=CURRENCY),
            vendor_id=rng.choice(vendors).id,
            serial_controlled=category is Category.ELECTRONICS and price >= 10000,
            weight_g=rng.randint(100, 4000),
        )
    return items


def _orders(rng: random.Random, config: SeedConfig, customers: list[str], items: list[Item], sites: list[str]):
    orders: dict[str, SalesOrder] = {}
    for n in range(config.orders):
        # Orders over the 90 days before the epoch, busier towards the holidays.
        age_days = 90 * rng.random() ** 1.6
        ordered_at = (config.epoch - timedelta(days=age_days)).replace(microsecond=0)
        in_transit = rng.random() < config.undelivered_share
        delivered_at = None if in_transit else ordered_at + timedelta(hours=rng.randint(30, 140))
        if delivered_at is not None and delivered_at > config.epoch:
            delivered_at = None
        picked = rng.sample(items, k=min(len(items), rng.choice([1, 1, 1, 2, 2, 3, 4])))
        lines = [
            OrderLine(
                line_number=10 * (i + 1),
                item_id=item.id,
                quantity=rng.choice([1, 1, 1, 1, 2, 2, 3]),
                unit_price=item.price,
            )
            for i, item in enumerate(picked)
        ]
        order_id = f"SO-{n + 1:06d}"
        orders[order_id] = SalesOrder(
            id=order_id,
            customer_id=rng.choice(customers),
            site_id=rng.choice(sites),
            currency=CURRENCY,
            ordered_at=ordered_at,
            delivered_at=delivered_at,
            lines=lines,
        )
    return orders


def generate(config: SeedConfig) -> MasterData:
    rng = random.Random(config.seed)
    fake = Faker("en_US")
    fake.seed_instance(config.seed)

    vendors = {
        f"VEND-{n + 1:03d}": Vendor(id=f"VEND-{n + 1:03d}", name=fake.company()) for n in range(config.vendors)
    }
    customers = {}
    for n in range(config.customers):
        cid = f"CUST-{n + 1:05d}"
        name = fake.name()
        handle = "".join(ch for ch in name.lower().replace(" ", ".") if ch.isalnum() or ch == ".")
        customers[cid] = Customer(
            id=cid,
            name=name,
            email=f"{handle}.{n + 1}@example.com",
            address=_address(fake),
            account_status=AccountStatus.ON_HOLD if rng.random() < config.on_hold_share else AccountStatus.ACTIVE,
        )
    sites = {
        code: Site(id=code, name=name, address=Address(street=fake.street_address(), city=city, region=region, postal_code=zip_))
        for code, name, city, region, zip_ in _SITES[: config.sites]
    }
    items = _items(rng, fake, config.items, list(vendors.values()))
    orders = _orders(rng, config, list(customers), list(items.values()), list(sites))
    return MasterData(
        config=config,
        customers=customers,
        vendors=vendors,
        items=items,
        sites=sites,
        orders=orders,
        policy=ReturnPolicy(),
    )


@lru_cache(maxsize=8)
def master_data(seed: int = 0, **sizes) -> MasterData:
    """The master data for a seed (cached: the four fakes of one world share one copy)."""
    return generate(SeedConfig(seed=seed, **sizes))
