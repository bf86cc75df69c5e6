"""The blood service: domain rules, use cases, ports and their AWS adapters."""
