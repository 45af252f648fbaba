"""What the four fake systems share: journal, fault hooks, auth, idempotency, errors, admin API."""
