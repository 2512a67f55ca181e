"""Simulated LinkedIn OpenID Connect userinfo endpoint (api.linkedin.com/v2)."""

from __future__ import annotations

from .base import ApiRequest, ApiResponse, PlatformApi, base62_id, json_response, route

GIVEN = ("Amara", "Jonas", "Mei", "Tomasz", "Ines", "Kofi", "Lena", "Ravi", "Sofia")
FAMILY = ("Okafor", "Lindqvist", "Tanaka", "Nowak", "Silva", "Mensah", "Weber")
LOCALES = (("US", "en"), ("DE", "de"), ("BR", "pt"), ("JP", "ja"), ("NG", "en"))


class LinkedInApi(PlatformApi):
    name = "linkedin"

    def __init__(self, seed: int, root: str):
        super().__init__(seed)
        self.root = root
        self.routes = [route("userinfo", r"/v2/userinfo", self.userinfo, "openid")]

    def build_user(self, index: int) -> dict:
        rng = self.rng("user", index)
        given = rng.choice(GIVEN)
        family = rng.choice(FAMILY)
        country, language = rng.choice(LOCALES)
        return {
            "id": base62_id(rng, 10),
            "login": f"sandbox.member{index}@example.org",
            "email": f"sandbox.member{index}@example.org",
            "name": f"{given} {family}",
            "given_name": given,
            "family_name": family,
            "locale": {"country": country, "language": language},
            # The third profile has no profile picture, as many members.
            "picture": None
            if index % 3 == 2
            else f"https://media.licdn.com/dms/image/{base62_id(rng, 16)}/profile",
        }

    def error_body(self, status: int, message: str, reason: str | None) -> dict:
        codes = {401: 65600, 403: 100, 404: 0, 429: 101}
        return {
            "serviceErrorCode": codes.get(status, 0),
            "message": message,
            "status": status,
        }

    def unauthorized(self, message: str) -> ApiResponse:
        return self.error(401, "Invalid access token")

    def userinfo(self, request: ApiRequest) -> ApiResponse:
        user = request.user
        body = {"sub": user["id"]}
        if "profile" in request.scopes:
            body.update(
                {
                    "name": user["name"],
                    "given_name": user["given_name"],
                    "family_name": user["family_name"],
                    "locale": user["locale"],
                }
            )
            if user["picture"]:
                body["picture"] = user["picture"]
        if "email" in request.scopes:
            body.update({"email": user["email"], "email_verified": True})
        return json_response(body)
