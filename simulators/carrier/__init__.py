"""Fake parcel carrier: return labels and tracking (shaped after EasyPost and Shippo)."""
