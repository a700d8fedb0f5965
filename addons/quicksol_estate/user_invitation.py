"""What an owner may put in a user they add to their estate companies: plain rules, no Odoo.

What is it?
    Owners run their estate companies but are not Odoo administrators: they cannot create
    ``res.users`` (that needs Administration/Access Rights, which would also let them grant
    Administration itself). ``res.users.create_estate_user`` creates the user with ``sudo``
    after these rules have reduced the request to a closed set of keys and estate roles.

How to use it?
    >>> clean_invitation({"name": "Ana", "login": "ana", "estate_company_ids": [3],
    ...                   "roles": ["agent"]}, allowed_company_ids={3, 4})
    {'name': 'Ana', 'login': 'ana', 'estate_company_ids': [3], 'roles': ['agent']}
    >>> "owner" in GRANTABLE_ROLES
    False

Caveats
    Owners grant only ``GRANTABLE_ROLES``: not ``owner`` (making co-owners stays with the
    administrators), never a group by id or xmlid. Foreign companies raise
    :class:`ForeignCompanyError`, so the caller can report it as the access error it is.
"""

__all__ = ["ALLOWED_KEYS", "GRANTABLE_ROLES", "ForeignCompanyError", "InvitationError", "clean_invitation"]

# Roles (suffixes of quicksol_estate.group_real_estate_<role>) an owner may give.
GRANTABLE_ROLES = ("agent", "auditor", "prospector")
ALLOWED_KEYS = ("name", "login", "email", "lang", "tz", "estate_company_ids", "roles")
_TEXT_KEYS = ("name", "login", "email", "lang", "tz")


class InvitationError(ValueError):
    """The request is malformed or asks for more than an owner may give."""


class ForeignCompanyError(InvitationError):
    """The request names estate companies the owner does not belong to; ``.ids`` lists them."""

    def __init__(self, ids):
        super().__init__(f"not your estate companies: {sorted(ids)}")
        self.ids = sorted(ids)


def clean_invitation(values, allowed_company_ids):
    """Return the validated ``values`` (only ``ALLOWED_KEYS``), or raise ``InvitationError``."""
    if not isinstance(values, dict):
        raise InvitationError("the user's values must be a dict")
    unknown = sorted(set(values) - set(ALLOWED_KEYS), key=str)
    if unknown:
        raise InvitationError(
            f"owners may only set {', '.join(ALLOWED_KEYS)}; not {', '.join(map(str, unknown))}"
        )
    for key in _TEXT_KEYS:
        if key in values and not isinstance(values[key], str):
            raise InvitationError(f"{key} must be text")
    if not (values.get("name") or "").strip() or not (values.get("login") or "").strip():
        raise InvitationError("name and login are required")
    companies = values.get("estate_company_ids")
    if (
        not isinstance(companies, list)
        or not companies
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in companies)
    ):
        raise InvitationError("estate_company_ids must be a non-empty list of estate company ids")
    foreign = set(companies) - set(allowed_company_ids)
    if foreign:
        raise ForeignCompanyError(foreign)
    roles = values.get("roles")
    if not isinstance(roles, list) or not roles:
        raise InvitationError(f"roles must be a non-empty list of {', '.join(GRANTABLE_ROLES)}")
    for role in roles:
        if role not in GRANTABLE_ROLES:
            raise InvitationError(f"roles an owner may grant: {', '.join(GRANTABLE_ROLES)}; not {role!r}")
    return {key: values[key] for key in ALLOWED_KEYS if key in values}
