"""Several instances on one Redis (KORE_VOICE_REDIS_URL): the connection and its health (`link`), each
instance's lease and the reaping of a dead one's calls (`leases`), messages to one instance (`bus`),
stream tokens spent once across the cluster (`spent_tokens`), and their wiring into the app (`wiring`).
Without KORE_VOICE_REDIS_URL none of it runs and every piece has its in-process twin."""
