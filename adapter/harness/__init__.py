"""The conversation harness of `kore-voice call`: YAML scripts run against the REST door."""
