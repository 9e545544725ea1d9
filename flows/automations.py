"""The Prefect automation Rujukan ships: an escalation marks the referral's run, no secret held.

Prefect's open-source server has no roles: whoever reaches its API reads every block with its
secrets (`include_secrets=true`) and can emit any event. So the shipped automation stores no URL
or token in Prefect and acts on nothing outside it: on every escalation it sets the referral's
run (the event's related `referral-run`) to the state *Escalated*, a suspended state, with a
message saying where to look. The case database still decides: the next sweep puts back the
state Rujukan wants (Escalated too, while the step stays escalated; a forged event changes
nothing for long). The task force hears of an escalation from Rujukan itself, through the
escalation message the sweep sends to the escalation target's channels.
"""

from __future__ import annotations

import logging

from prefect.automations import AutomationCore
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import CallWebhook, ChangeFlowRunState, DoNothing
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from flows.referral import ESCALATED
from models.settings import OVERDUE_ARTIFACT, Settings

log = logging.getLogger(__name__)

ESCALATION_AUTOMATION = "rujukan: step escalated to the task force"
# The Webhook block earlier versions saved with the task force's URL: removed where found.
LEGACY_WEBHOOK_BLOCK = "rujukan-task-force"
DESCRIPTION = (
    "On every rujukan.step.escalated event, marks the referral's run Escalated (Runs > the "
    f"reference; every overdue step: Artifacts > {OVERDUE_ARTIFACT}). The task force is told "
    "by Rujukan's own escalation message, not from here, and the case database decides the "
    "run's state at the next sweep. Anyone who reaches this Prefect API can emit such an event "
    "and read every block, secrets included: add no action that trusts the event or holds a "
    "URL or token."
)
ESCALATED_MESSAGE = (
    "a step was escalated to the task force (Rujukan sent the escalation message); every "
    f"overdue step: Artifacts > {OVERDUE_ARTIFACT}"
)


def escalation_trigger():
    """Fires once for every rujukan.step.escalated event."""

    return EventTrigger(
        expect={"rujukan.step.escalated"},
        match={"prefect.resource.id": "*"},
        posture=Posture.Reactive,
        threshold=1,
        within=0,
    )


def escalation_action() -> ChangeFlowRunState:
    """Set the referral's run (found from the event's related flow run) to Escalated.

    A suspended (PAUSED) state, forced: Prefect refuses to pause a run that is not running.
    """
    return ChangeFlowRunState(
        state=StateType.PAUSED, name=ESCALATED, message=ESCALATED_MESSAGE, force=True
    )


def escalation_automation(name: str = ESCALATION_AUTOMATION):
    """The shipped automation: on every escalation, mark the referral's run Escalated."""

    return AutomationCore(
        name=name,
        description=DESCRIPTION,
        enabled=True,
        trigger=escalation_trigger(),
        actions=[escalation_action()],
    )


def ensure_automations(settings: Settings) -> list[str]:
    """Create the shipped automation if it does not exist yet; return the names created.

    Call it with Prefect's API configured (see flows.server.prefect_at). An automation a manager
    edited in the UI is left as it is, except that the webhook block earlier versions stored
    (with the task force's URL in it) is deleted, and the shipped automation's call to it with it.
    """

    if settings.task_force_webhook is not None:
        log.warning(
            "RUJUKAN_TASK_FORCE_WEBHOOK is not handed to Prefect (its API shows secrets to "
            "anyone who reaches it): give the escalation target's channel in the channels file"
        )
    with get_client(sync_client=True) as client:
        forget_legacy_webhook(client)
        existing = client.read_automations_by_name(ESCALATION_AUTOMATION)
        for automation in existing:
            # The version before only recorded (Do nothing), which the UI's editor shows as an
            # empty action: it gets the shipped action. One a manager changed is left alone.
            if automation.actions and all(isinstance(a, DoNothing) for a in automation.actions):
                client.update_automation(automation.id, escalation_automation())
        if existing:
            return []
        client.create_automation(escalation_automation())
    return [ESCALATION_AUTOMATION]


def forget_legacy_webhook(client) -> bool:
    """Delete the task force's webhook block of earlier versions; true if there was one."""

    try:
        block = client.read_block_document_by_name(
            LEGACY_WEBHOOK_BLOCK, "webhook", include_secrets=False
        )
    except ObjectNotFound:
        return False
    for automation in client.read_automations_by_name(ESCALATION_AUTOMATION):
        kept = [
            a
            for a in automation.actions
            if not (isinstance(a, CallWebhook) and a.block_document_id == block.id)
        ]
        if len(kept) != len(automation.actions):
            client.update_automation(
                automation.id,
                AutomationCore(
                    name=automation.name,
                    description=DESCRIPTION,
                    enabled=automation.enabled,
                    trigger=automation.trigger,
                    actions=kept or [DoNothing()],
                    actions_on_trigger=automation.actions_on_trigger,
                    actions_on_resolve=automation.actions_on_resolve,
                ),
            )
    client.delete_block_document(block.id)
    return True
