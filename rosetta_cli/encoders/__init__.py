"""Frozen visual and text encoders: `get_visual_encoder`, `get_text_encoder`, `list_encoders`."""

from rosetta_cli.encoders.registry import get_text_encoder, get_visual_encoder, list_encoders

__all__ = ["get_text_encoder", "get_visual_encoder", "list_encoders"]
