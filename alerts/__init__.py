"""Alert rules, engine and notifiers (see the alerts issue)."""
