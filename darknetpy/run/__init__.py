"""Executors: what runs a model's layers on a backend (inference now; training to come)."""
