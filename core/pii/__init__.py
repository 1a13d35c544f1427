"""Personal data: Presidio scans, review and the gate, decisions by value, dataset vocabulary, erasure."""
