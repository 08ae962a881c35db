"""The Vonage Voice API door: NCCO answer, signed webhooks, call events, the audio WebSocket, REST hang-up."""
