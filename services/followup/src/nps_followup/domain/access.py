"""Which cases a person may see and work: their teams' queues and the cases they own.

A person's teams are those of the follow-up policy that name them (member, lead or second
level), and those their token's groups name. An admin sees every case (no scope)."""

from collections.abc import Iterable
from dataclasses import dataclass

from nps_followup.domain.cases import Case
from nps_followup.domain.policy import Policy


@dataclass(frozen=True, slots=True)
class CaseScope:
    teams: frozenset[str]
    person: str | None

    def sees(self, case: Case) -> bool:
        if case.team is not None and case.team in self.teams:
            return True
        return self.person is not None and (case.owner or "").lower() == self.person


def teams_of(policy: Policy, *, email: str | None, groups: Iterable[str] = ()) -> frozenset[str]:
    """The policy's teams that name `email`, and those among `groups`."""
    person = (email or "").lower()
    named = {
        name
        for name, team in policy.teams.items()
        if person
        and person
        in {p.lower() for p in (*team.members, team.lead, team.second_level) if p is not None}
    }
    return frozenset(named | (set(groups) & set(policy.teams)))


def scope_of(policy: Policy, *, email: str | None, groups: Iterable[str] = ()) -> CaseScope:
    return CaseScope(
        teams=teams_of(policy, email=email, groups=groups),
        person=email.lower() if email else None,
    )
