"""The load shape: users over time from :mod:`load.profiles` (``--rh-shape``, ``--rh-rate``)."""

from __future__ import annotations

from locust import LoadTestShape

from load.profiles import users_for


class ReturnsShape(LoadTestShape):
    """Steady, post-holiday peak, promotion spike, recall (the model's profiles, compressed in
    time), or step; the load is set in returns/minute, not with -u/-r. ``-t`` ends it early."""

    # False: Locust's web UI then disables its users and ramp-up fields, which a shape ignores. The
    # shape still ends at --run-time (-t) by reading it itself.
    use_common_options = False

    def tick(self):
        ctx = self.runner.environment.rh_master
        now = self.get_run_time()
        run_time = getattr(self.runner.environment.parsed_options, "run_time", None)
        rate = ctx.profile.rate(now)
        if rate is None or (run_time and now >= run_time):
            return None
        users = users_for(rate, ctx.pace_s)
        ctx.target_rates.append(rate)
        return users, max(users, 10)
