"""What the probes produced: the latest results in memory (``results``) and the
embedded history on disk (``history``)."""
