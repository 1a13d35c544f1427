"""Results: statistics, agreement, exports, charts, the loop overview."""
