"""The Prefect automation Rujukan ships: tell the task force when a step is escalated."""

from __future__ import annotations

from models.settings import Settings

ESCALATION_AUTOMATION = "rujukan: step escalated to the task force"
WEBHOOK_BLOCK = "rujukan-task-force"

# Codes and the reference only: event resources carry nothing else.
WEBHOOK_PAYLOAD = (
    '{"event": "{{ event.event }}", "reference": "{{ event.resource.id }}", '
    '"pathway": "{{ event.resource["pathway"] }}", "step": "{{ event.resource["step"] }}", '
    '"agency": "{{ event.resource["agency"] }}", "occurred": "{{ event.occurred }}"}'
)


def escalation_trigger():
    """Fires once for every rujukan.step.escalated event."""
    from prefect.events.schemas.automations import EventTrigger, Posture

    return EventTrigger(
        expect={"rujukan.step.escalated"},
        match={"prefect.resource.id": "*"},
        posture=Posture.Reactive,
        threshold=1,
        within=0,
    )


def escalation_automation(settings: Settings, name: str = ESCALATION_AUTOMATION):
    """The shipped automation: on every escalation, post its codes to the task force's webhook
    (RUJUKAN_TASK_FORCE_WEBHOOK), or, without one, only record that it fired."""
    from prefect.automations import AutomationCore
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook, DoNothing

    if settings.task_force_webhook is not None:
        block_id = Webhook(url=settings.task_force_webhook.get_secret_value()).save(
            WEBHOOK_BLOCK, overwrite=True
        )
        actions = [CallWebhook(block_document_id=block_id, payload=WEBHOOK_PAYLOAD)]
        how = "posts the reference, pathway, step and agency to RUJUKAN_TASK_FORCE_WEBHOOK"
    else:
        actions = [DoNothing()]
        how = (
            "records that it fired; add a notification action in the UI "
            "(Automations > this automation > Edit > Actions) "
            "or set RUJUKAN_TASK_FORCE_WEBHOOK"
        )
    return AutomationCore(
        name=name,
        description=f"When the sweep escalates an overdue step, this automation {how}.",
        enabled=True,
        trigger=escalation_trigger(),
        actions=actions,
    )


def ensure_automations(settings: Settings) -> list[str]:
    """Create the shipped automation if it does not exist yet; return the names created.

    Call it with Prefect's API configured (see flows.server.prefect_at). An automation a manager
    edited in the UI is left as it is.
    """
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        if client.read_automations_by_name(ESCALATION_AUTOMATION):
            return []
        client.create_automation(escalation_automation(settings))
    return [ESCALATION_AUTOMATION]
