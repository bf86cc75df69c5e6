"""Whether the table answers, for ``/health``."""

from __future__ import annotations

from dataclasses import dataclass

from bloodbank.storage.models import TableBinding


@dataclass
class TableProbe:
    binding: TableBinding
    name: str = "dynamodb"

    def check(self) -> None:
        status = self.binding.connection().describe_table(self.binding.name).get("TableStatus")
        if status != "ACTIVE":
            raise RuntimeError(f"table status {status}")
