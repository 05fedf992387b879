"""``GET /_matrix/client/unstable/dev.homeserver/media/info/{serverName}/{mediaId}``:
what a client puts in an event's ``info`` (docs/media.md), without downloading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.matrix import auth
from tests.support.media_files import (
    new_user,
    ogg_vorbis_sine,
    pdf_document,
    png_image,
    running_media_server,
    uploaded,
)

INFO = "/_matrix/client/unstable/dev.homeserver/media/info/localhost/"


def test_info_gives_image_size_audio_duration_and_file_name(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_media_server(tmp_path, database_config) as media:
        server = media.process
        token = new_user(server)["access_token"]
        image_id = uploaded(server, token, png_image(640, 360), "image/png", "wide.png")
        audio_id = uploaded(server, token, ogg_vorbis_sine(seconds=2.0), "audio/ogg", "note.ogg")
        pdf = pdf_document()
        document_id = uploaded(server, token, pdf, "application/pdf", "Report 2026.pdf")

        image = server.request("GET", INFO + image_id, headers=auth(token))
        assert image.status == 200, image.body
        assert image.json() == {
            "mimetype": "image/png",
            "size": image.json()["size"],
            "name": "wide.png",
            "w": 640,
            "h": 360,
        }
        assert image.json()["size"] > 0

        audio = server.request("GET", INFO + audio_id, headers=auth(token)).json()
        assert audio["mimetype"] == "audio/ogg"
        assert abs(audio["duration"] - 2000) <= 50
        assert "w" not in audio

        document = server.request("GET", INFO + document_id, headers=auth(token)).json()
        assert document == {
            "mimetype": "application/pdf",
            "size": len(pdf),
            "name": "Report 2026.pdf",
        }


def test_info_needs_a_token_and_known_media(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_media_server(tmp_path, database_config) as media:
        server = media.process
        token = new_user(server)["access_token"]
        anonymous = server.request("GET", INFO + "abcdef")
        assert (anonymous.status, anonymous.json()["errcode"]) == (401, "M_MISSING_TOKEN")
        unknown = server.request("GET", INFO + "abcdef", headers=auth(token))
        assert (unknown.status, unknown.json()["errcode"]) == (404, "M_NOT_FOUND")
        versions = server.request("GET", "/_matrix/client/versions").json()
        assert versions["unstable_features"]["dev.homeserver.media_info"] is True
