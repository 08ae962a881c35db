"""Speech to text (and later text to speech) behind small engine-neutral interfaces."""
