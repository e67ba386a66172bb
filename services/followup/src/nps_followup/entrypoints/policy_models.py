"""The policy in force as followup's API shows it: rules, deadlines, ladders, messages, in the
policy file's words."""

from pydantic import BaseModel, Field

from nps_followup.domain.policy import ActionKind, Duration, Rule


class MatchOut(BaseModel):
    segment: str
    source: list[str] | None = Field(description="Any of these sources; null: any source.")
    survey: list[str] | None = Field(description="Any of these surveys; null: any survey.")
    attributes: dict[str, list[str]] = Field(
        description="Each customer attribute must have one of its values."
    )


class LadderStepOut(BaseModel):
    step: str = Field(description="reminder, escalation or second_level.")
    when: str = Field(description="e.g. `4 business hours before the deadline`.")
    tells: str = Field(
        description="owner (else the team's lead), lead, or second_level (else the lead)."
    )


class CaseRuleOut(BaseModel):
    team: str
    owner: str = Field(description="account_owner, round_robin or unassigned.")
    contact_within: str = Field(description="The contact deadline, e.g. `2 business days`.")
    ladder: list[LadderStepOut]


class MessageOut(BaseModel):
    kind: str = Field(description="email, sms or ticket.")
    template: str | None
    after: str = Field(description="Calendar time after the response, e.g. `1 day`.")
    priority: str | None = Field(description="For a ticket: low, normal, high or urgent.")
    exempt_from_frequency_cap: bool


def _said(duration: Duration) -> str:
    """`1 business day`, `4 business hours`: as people write it (the policy file's words)."""
    text = str(duration)
    return text[:-1] if duration.amount == 1 else text


class RuleOut(BaseModel):
    name: str
    when: MatchOut
    specificity: int = Field(
        description="How many conditions beyond the segment: the most specific match applies."
    )
    case: CaseRuleOut | None = Field(description="null: the messages alone, nobody's case.")
    actions: list[MessageOut]
    resurvey_after: str | None = Field(
        default=None,
        description="How long after its case closed the customer is asked again (the rule's "
        "`resurvey_after`, else the policy's), e.g. `30 days`; null: never.",
    )
    resurvey_webhook: str | None = Field(
        default=None,
        description="The endpoint of notify's NOTIFY_WEBHOOKS also called when the customer "
        "is asked again (the rule's `resurvey_webhook`, else the policy's); null: none, or no "
        "re-survey.",
    )
    holdout: str | None = Field(
        default=None,
        description="The share of the rule's customers who receive nothing (e.g. `10%`), for "
        "the impact figures; null: none.",
    )

    @classmethod
    def of(
        cls,
        rule: Rule,
        *,
        resurvey_after: Duration | None = None,
        resurvey_webhook: str | None = None,
    ) -> "RuleOut":
        case = rule.case
        ladder = []
        if case is not None:
            if case.remind_before is not None:
                ladder.append(
                    LadderStepOut(
                        step="reminder",
                        when=f"{_said(case.remind_before)} before the deadline",
                        tells="owner",
                    )
                )
            ladder.append(LadderStepOut(step="escalation", when="at the deadline", tells="lead"))
            if case.second_level_after is not None:
                ladder.append(
                    LadderStepOut(
                        step="second_level",
                        when=f"{_said(case.second_level_after)} after the deadline",
                        tells="second_level",
                    )
                )
        return cls(
            name=rule.name,
            when=MatchOut(
                segment=rule.when.segment.value,
                source=list(rule.when.source) if rule.when.source is not None else None,
                survey=list(rule.when.survey) if rule.when.survey is not None else None,
                attributes={k: list(v) for k, v in rule.when.attributes.items()},
            ),
            specificity=rule.when.specificity,
            case=None
            if case is None
            else CaseRuleOut(
                team=case.team,
                owner=case.owner.value,
                contact_within=_said(case.contact_within),
                ladder=ladder,
            ),
            actions=[
                MessageOut(
                    kind=a.kind.value,
                    template=a.template,
                    after=_said(a.after),
                    priority=a.priority.value if a.kind is ActionKind.TICKET else None,
                    exempt_from_frequency_cap=a.exempt_from_frequency_cap,
                )
                for a in rule.actions
            ],
            resurvey_after=None if resurvey_after is None else _said(resurvey_after),
            resurvey_webhook=None if resurvey_after is None else resurvey_webhook,
            holdout=None if rule.holdout is None else f"{rule.holdout.normalize():f}%",
        )


class PolicyOut(BaseModel):
    rules: list[RuleOut] = Field(description="In the order the policy file lists them.")
    teams: list[str]
    root_causes: list[str]
