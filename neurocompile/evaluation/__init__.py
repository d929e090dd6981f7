"""Evaluation of an artifact over a whole test set: streamed in chunks (stream), recorded per
sample (records), resumable (store), on Ray workers (distributed), summarised with confidence
intervals (metrics), swept over steps, mask ratios and seeds (sweep)."""
