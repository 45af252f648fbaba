"""Fake warehouse management system: expected receipts, receipts and inspections (shaped after ShipHero and Optoro)."""
