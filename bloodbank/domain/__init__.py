"""Pure rules of the blood service: no I/O, no AWS, no GraphQL."""
