"""Vocabulary shared by every domain: blood groups and components."""

from __future__ import annotations

from enum import Enum


class BloodGroup(Enum):
    O_NEG = "O_NEG"
    O_POS = "O_POS"
    A_NEG = "A_NEG"
    A_POS = "A_POS"
    B_NEG = "B_NEG"
    B_POS = "B_POS"
    AB_NEG = "AB_NEG"
    AB_POS = "AB_POS"

    @property
    def label(self) -> str:
        """How people write it: ``O-``, ``AB+``."""
        abo, rh = self.value.split("_")
        return abo + ("-" if rh == "NEG" else "+")


class Component(Enum):
    WHOLE_BLOOD = "WHOLE_BLOOD"
    RED_CELLS = "RED_CELLS"
    PLATELETS = "PLATELETS"
    PLASMA = "PLASMA"
    CRYO = "CRYO"


class Jurisdiction(Enum):
    """Which regulator's eligibility rules a site follows."""

    US = "US"
    UK = "UK"
