"""Timed events and churn: model, trace parsing, churn generator, player, engine."""
