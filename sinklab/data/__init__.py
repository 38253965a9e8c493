"""Data: tokenizers, token shards, the synthetic Bigram-Backcopy corpus and batch-time interventions."""
