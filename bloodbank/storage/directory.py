"""Sites, hospitals and hospital memberships in the single table (see ACCESS_PATTERNS.md)."""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from bloodbank.domain.blood import Jurisdiction
from bloodbank.domain.organisations import Hospital, Site
from bloodbank.errors import DependencyUnavailable
from bloodbank.storage import keys
from bloodbank.storage.models import HospitalItem, HospitalMemberItem, SiteItem, TableItem

PAGE = 500  # reference data: a regional service has tens of sites and hospitals, not thousands


class DynamoDirectory:
    def sites(self) -> Sequence[Site]:
        items = TableItem.gsi3.query(keys.ALL_SITES, page_size=PAGE)
        return [
            Site(
                id=i.site_id,
                name=i.name,
                jurisdiction=Jurisdiction(i.jurisdiction),
                facility_code=i.facility_code,
                timezone=i.timezone,
            )
            for i in items
            if isinstance(i, SiteItem)
        ]

    def hospitals(self) -> Sequence[Hospital]:
        items = TableItem.gsi3.query(keys.ALL_HOSPITALS, page_size=PAGE)
        return [
            Hospital(id=i.hospital_id, name=i.name, site_id=i.site_id)
            for i in items
            if isinstance(i, HospitalItem)
        ]

    def hospital_of(self, user_sub: str) -> str | None:
        key = keys.hospital_membership(user_sub)
        try:
            return str(HospitalMemberItem.get(key.pk, key.sk).hospital_id)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise DependencyUnavailable(f"membership lookup failed: {type(exc).__name__}") from None

    # Writes used by seeding and administration.
    def put_site(self, site: Site) -> None:
        item = SiteItem(
            site_id=site.id,
            name=site.name,
            jurisdiction=site.jurisdiction.value,
            facility_code=site.facility_code,
            timezone=site.timezone,
        )
        item.set_key(keys.site(site.id))
        item.set_index(keys.all_sites(site.name, site.id))
        item.save()

    def put_hospital(self, hospital: Hospital) -> None:
        item = HospitalItem(hospital_id=hospital.id, name=hospital.name, site_id=hospital.site_id)
        item.set_key(keys.hospital(hospital.id))
        item.set_index(keys.all_hospitals(hospital.name, hospital.id))
        item.save()

    def put_membership(self, user_sub: str, hospital_id: str) -> None:
        item = HospitalMemberItem(user_sub=user_sub, hospital_id=hospital_id)
        item.set_key(keys.hospital_membership(user_sub))
        item.save()

    def delete_membership(self, user_sub: str) -> None:
        """The user (or hospital app client) no longer acts for any hospital; no error if it did not."""
        key = keys.hospital_membership(user_sub)
        item = HospitalMemberItem(user_sub=user_sub, hospital_id="")
        item.set_key(key)
        item.delete()
