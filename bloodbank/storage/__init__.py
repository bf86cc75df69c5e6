"""The single DynamoDB table: its definition, PynamoDB models, key strings and repositories."""
