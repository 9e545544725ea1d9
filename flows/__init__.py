"""Prefect flows that run the engine: referrals, the deadline sweep, batches and reports."""
