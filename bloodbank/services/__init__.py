"""Use cases: each takes the caller's identity, checks what they may do, and works through ports."""
