"""Page faults: the perf_event_open ring, the sampler, attribution to VMAs, ELF symbols."""
