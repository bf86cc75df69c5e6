"""The GraphQL schema: types, root fields with their authorization, context, and error policy."""

from schema.root import schema

__all__ = ["schema"]
