"""The local stack: DynamoDB Local and a moto server as child processes, provisioned and seeded."""
