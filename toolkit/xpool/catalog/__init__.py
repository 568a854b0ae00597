"""Accelerator and model-architecture facts, each with its sources."""
