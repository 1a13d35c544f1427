"""The background worker process and the queue as users see it."""
