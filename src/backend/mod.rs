//! Per-core backend state: servers, balancing, connection slots, queue.
