"""Rujukan's case model: tables, pathways, deadlines and the engine's transactions."""
