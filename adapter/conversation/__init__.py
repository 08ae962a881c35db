"""One transport-neutral conversation per call: turn-taking, digits, barge-in, re-prompts, timers."""
