"""Places the service works with: its own collection/processing sites and the hospitals it supplies."""

from __future__ import annotations

from dataclasses import dataclass

from bloodbank.domain.blood import Jurisdiction


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    jurisdiction: Jurisdiction
    facility_code: str  # ISBT 128 facility identification number (5 characters)
    timezone: str


@dataclass(frozen=True, slots=True)
class Hospital:
    id: str
    name: str
    site_id: str  # the site that supplies it
