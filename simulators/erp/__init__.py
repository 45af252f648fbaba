"""Fake ERP: system of record for returns (shaped loosely after NetSuite, S/4HANA and Dynamics 365)."""
