"""Followup's use cases, one module per use case. Each runs inside the caller's unit of work.

- `opening`: scored responses open cases (owners, actions, timers, the first notices);
- `timers`: the sweeper fires due timers: scheduled actions and the escalation ladder;
- `transitions`: people drive the lifecycle: assign, contact, resolve, close, reopen;
- `results`: action outcomes from notify and ticket changes from the helpdesks;
- `opt_outs`: the do-not-contact list: providers' opt-out events, people's changes;
- `reading`: cases and the closed-loop figures.
"""

from nps_followup.handlers.common import (
    CONSUMER,
    CaseNotFound,
    PolicyInForce,
    UnknownOwner,
    team_members,
)
from nps_followup.handlers.opening import Applied, apply_policy, open_cases
from nps_followup.handlers.opt_outs import (
    NotOnTheList,
    do_not_contact_of,
    put_on_do_not_contact,
    record_opt_outs,
    take_off_do_not_contact,
)
from nps_followup.handlers.reading import (
    FollowUp,
    GroupFigures,
    QueuePage,
    business_time_left,
    business_time_runs_until,
    figures,
    follow_up_of,
    get_case,
    list_cases,
    queue_page,
)
from nps_followup.handlers.results import record_action_results, record_ticket_changes
from nps_followup.handlers.timers import sweep_due_timers
from nps_followup.handlers.transitions import (
    assign_case,
    close_case,
    record_contact,
    reopen_case,
    resolve_case,
)

__all__ = [
    "CONSUMER",
    "Applied",
    "CaseNotFound",
    "FollowUp",
    "GroupFigures",
    "NotOnTheList",
    "PolicyInForce",
    "QueuePage",
    "UnknownOwner",
    "apply_policy",
    "assign_case",
    "business_time_left",
    "business_time_runs_until",
    "close_case",
    "do_not_contact_of",
    "figures",
    "follow_up_of",
    "get_case",
    "list_cases",
    "open_cases",
    "put_on_do_not_contact",
    "queue_page",
    "record_action_results",
    "record_contact",
    "record_opt_outs",
    "record_ticket_changes",
    "reopen_case",
    "resolve_case",
    "sweep_due_timers",
    "take_off_do_not_contact",
    "team_members",
]
