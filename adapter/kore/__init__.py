"""Kore.ai Webhook channel: JWT, payloads, client, async callbacks, reply flattening, simulator."""
