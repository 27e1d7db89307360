"""Which ticket states mean what: one home for every set of states a rule, a query or a screen selects by.

Why named sets and not lists in each module: the sets encode decisions (a reopened ticket has no running clock, a
send-back stops its unit's clock) and copies drift. Every module that filters by state imports from here.
"""

from __future__ import annotations

from hotline.models import Status as S

#: the reply clock has stopped: answered one way or another (directly, by a unit's reply, by a merge or transfer)
STOPPED_STATES: frozenset[S] = frozenset({S.replied, S.answered, S.callback, S.closed, S.merged, S.transferred})

#: still being worked on: what a new report may duplicate and what a hot spot counts as open
IN_PROGRESS_STATES: frozenset[S] = frozenset(set(S) - STOPPED_STATES)

#: the sweep chases these (reminders, overdue, escalation) and only these can be overdue against a unit.
#: ``returned`` is out: a send-back waits for the centre's decision, so the unit's clock stands still (a refusal
#: moves its deadlines on by the wait; the board shows supervisors how long the centre has kept it waiting);
#: ``reopened`` is out (it waits for a dispatcher like a new ticket; the re-dispatch sets fresh deadlines)
DEADLINE_STATES: frozenset[S] = frozenset({S.dispatched, S.signed})

#: the unit's clock stands still: waiting for the citizen (待补充) or for the centre's decision on a send-back
PAUSED_STATES: frozenset[S] = frozenset({S.awaiting_citizen, S.returned})

#: the front desk's queue: new, sent back and reopened tickets wait for an agent or dispatcher
TRIAGE_STATES: frozenset[S] = frozenset({S.received, S.returned, S.reopened})

#: waiting for the follow-up call (回访)
CALLBACK_STATES: frozenset[S] = frozenset({S.replied, S.answered})

#: a unit's open work list. Not ``reopened``: a reopened ticket waits for the dispatcher (who sends it back to its
#: lead unit by default) and reaches the unit again with fresh deadlines, the reason and its 重办 mark
UNIT_OPEN_STATES: frozenset[S] = frozenset({S.dispatched, S.signed, S.awaiting_citizen, S.returned})

#: the states each tab of the unit desk lists
UNIT_VIEWS: dict[str, frozenset[S]] = {"open": UNIT_OPEN_STATES, "replied": frozenset({S.replied})}


def sorted_states(states: frozenset[S]) -> tuple[S, ...]:
    """A stable order for SQL ``IN`` lists and for display."""
    return tuple(sorted(states))
