"""Fake returns portal: the returns SaaS customers start returns in (shaped after Loop, AfterShip and Narvar)."""
