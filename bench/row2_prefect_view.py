"""Row 2: the manager's view of the mass rescue of row 1: seconds until every referral of the
batch shows in Prefect with its tags (flow runs counted through Prefect's API by name and
`pathway:` tag); and `rujukan serve` ready after a restart with 10,000 referrals to catch up.
Baseline: bare flow runs of the same count created through Prefect's client (8 at a time)."""

from __future__ import annotations

from bench.common import Figure, at_most, not_measured
from bench.serve_rescue import BACKLOG, WAIT, rescue


def run(smoke: bool) -> list[Figure]:
    if smoke:
        why = "the smoke run starts no serve and no Prefect server; the full run measures it"
        return [
            not_measured(2, "every referral of the batch visible in Prefect", why, "<= 60 s"),
            not_measured(2, "serve ready after a restart with a backlog", why, "<= 20 s"),
        ]
    f = rescue()
    figures = []
    for label, key in (("JSON webhooks", "json"), ("email", "email")):
        run_ = f[key]
        figures.append(
            Figure(
                row=2,
                what=f"{run_['referrals']} referrals ({label} batch) visible in Prefect with tags",
                unit="s",
                figure=None if run_["visible_s"] is None else round(run_["visible_s"], 1),
                baseline=round(f["bare_runs_s"], 1),
                baseline_what=f"{run_['referrals']} bare flow runs through the client",
                target="<= 60 s",
                met=False if run_["visible_s"] is None else run_["visible_s"] <= 60,
                notes=f"not reached: {run_['visible']} of {run_['referrals']} visible when the "
                f"wait ended ({WAIT} s after the command started)"
                if run_["visible_s"] is None
                else "",
            )
        )
    figures.append(
        Figure(
            row=2,
            what=f"serve ready after a restart with {BACKLOG:,} referrals to catch up",
            unit="s",
            figure=round(f["restart_ready_s"], 1),
            baseline=round(f["first_start_s"], 1),
            baseline_what="serve's first start on the same home, nothing to catch up",
            target="<= 20 s, catching up behind",
            met=at_most(f["restart_ready_s"], 20),
            notes=f"backlog written with bulk inserts in {f['backlog_built_s']:.1f} s; "
            f"{f['restart_synced_after_5s']:,} referrals had a Prefect run 5 s after ready",
        )
    )
    return figures
