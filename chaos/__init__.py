"""Game-day tooling: throwaway servers, the stack, the fault proxy, and drills."""
