"""Simulated platform APIs, one module per platform."""

from __future__ import annotations

from .base import ApiError, ApiRequest, ApiResponse, PlatformApi
from .discord import DiscordApi
from .github import GitHubApi
from .linkedin import LinkedInApi
from .reddit import RedditApi
from .spotify import SpotifyApi
from .twitch import TwitchApi
from .youtube import YouTubeApi

API_CLASSES: dict[str, type[PlatformApi]] = {
    "spotify": SpotifyApi,
    "github": GitHubApi,
    "discord": DiscordApi,
    "linkedin": LinkedInApi,
    "youtube": YouTubeApi,
    "reddit": RedditApi,
    "twitch": TwitchApi,
}

__all__ = ["API_CLASSES", "ApiError", "ApiRequest", "ApiResponse", "PlatformApi"]
