"""The add-on checks a Generate-from-Text prompt before any job with the generator's own limits: its copies of them
(the add-on cannot import ``models``) equal the generator's (runs in the backend environment)."""

from __future__ import annotations

from blender_addon import client
from models.instruct import generator


def test_prompt_and_variation_limits_match_the_generator():
    assert client.MAX_PROMPT_CHARS == generator.MAX_PROMPT_CHARS
    assert client.MAX_SAMPLES == generator.MAX_SAMPLES


def test_default_guidance_matches_the_generator():
    assert client.TEXT_GUIDANCE == generator.DEFAULT_GUIDANCE
