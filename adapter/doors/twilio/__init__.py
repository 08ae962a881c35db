"""The Twilio door: Programmable Voice webhooks answered with TwiML (`voice.py`) or a bidirectional
Media Stream per call (`media.py`), both thin translators around the conversation engine."""
