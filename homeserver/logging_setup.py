"""Logging for the server process: stdlib logging, with Twisted's log routed into it."""

from __future__ import annotations

import logging
import logging.config
import sys

import yaml
from twisted.logger import ILogObserver, STDLibLogObserver, globalLogBeginner

from homeserver.config.model import HomeServerConfig
from homeserver.config.reader import ConfigError


def setup_logging(config: HomeServerConfig) -> None:
    if config.log_config is not None:
        try:
            log_settings = yaml.safe_load(config.log_config.read_text("utf-8"))
            logging.config.dictConfig(log_settings)
        except (OSError, yaml.YAMLError, ValueError, TypeError) as error:
            raise ConfigError("log_config", f"cannot use {config.log_config}: {error}") from None
    else:
        logging.basicConfig(
            level=config.log_level,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    globalLogBeginner.beginLoggingTo(
        [ILogObserver(STDLibLogObserver(name="twisted"))],
        redirectStandardIO=False,
        discardBuffer=True,
    )
