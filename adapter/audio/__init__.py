"""Audio at the edges: codecs, resampling, voice activity and in-band DTMF, all on 16-bit mono PCM."""
