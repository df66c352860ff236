"""Voicemails become tickets: the model, the Redis store, recordings, transcripts and delivery."""
