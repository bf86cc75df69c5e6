"""AppSync-style resolvers: one function per field. Each authorizes, calls a service, and maps.

A resolver receives a ``ResolverEvent`` (identity, arguments, source, headers) and returns domain
objects; the schema's types mirror them field by field.
"""
