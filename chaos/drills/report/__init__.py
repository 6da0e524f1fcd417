"""What a drill run writes for the game-day review: the incident report (incident), the timeline picture
(timeline), the resiliency matrix (matrix) and the history across runs with its trends (history)."""
