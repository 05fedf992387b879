"""Logging for the server process: stdlib logging, with Twisted's log routed into it.

``log_config`` is a ``logging.config.dictConfig`` file, as in Synapse, and the one
Synapse generates works as it is: its ``%(request)s`` format field is filled in (with
``-``), its buffering handler becomes the standard ``MemoryHandler`` and its context
filter a no-op.  Any other Synapse logging class is refused with a clear message.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import yaml
from twisted.logger import ILogObserver, STDLibLogObserver, globalLogBeginner

from homeserver.config.model import HomeServerConfig
from homeserver.config.reader import ConfigError

#: Synapse's handler that also flushes every ``period`` seconds: the standard
#: MemoryHandler flushes when full or at ``flushLevel``, which is close enough.
_SYNAPSE_BUFFER_HANDLER = "synapse.logging.handlers.PeriodicallyFlushingMemoryHandler"
#: Synapse's filter that adds the request to records (older generated configs use it).
_SYNAPSE_CONTEXT_FILTER = "synapse.logging.context.LoggingContextFilter"


class RequestFieldFilter(logging.Filter):
    """Stands in for Synapse's context filter: records get ``request`` if they lack it."""

    def __init__(self, request: str = "-", **_ignored: Any) -> None:
        super().__init__()
        self._request = request or "-"

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request"):
            record.request = self._request
        return True


def adapt_synapse_log_settings(settings: Any) -> Any:
    """``settings`` (a dictConfig mapping) with Synapse's own classes replaced."""
    if not isinstance(settings, dict):
        return settings
    for handler in (settings.get("handlers") or {}).values():
        if isinstance(handler, dict) and handler.get("class") == _SYNAPSE_BUFFER_HANDLER:
            handler["class"] = "logging.handlers.MemoryHandler"
            handler.pop("period", None)
    for log_filter in (settings.get("filters") or {}).values():
        if isinstance(log_filter, dict) and log_filter.get("()") == _SYNAPSE_CONTEXT_FILTER:
            log_filter["()"] = f"{__name__}.RequestFieldFilter"
    for section in ("handlers", "formatters", "filters"):
        for name, entry in (settings.get(section) or {}).items():
            if not isinstance(entry, dict):
                continue
            for field in ("class", "()"):
                target = entry.get(field)
                if isinstance(target, str) and target.startswith("synapse."):
                    raise ValueError(
                        f"{section}.{name} uses {target}, a Synapse logging class this "
                        "server does not have; use a standard logging class instead"
                    )
    return settings


def _add_request_field() -> None:
    """Synapse's formats use ``%(request)s``; records made here get ``-`` for it."""
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if not hasattr(record, "request"):
            record.request = "-"
        return record

    logging.setLogRecordFactory(factory)


def setup_logging(config: HomeServerConfig) -> None:
    if config.log_config is not None:
        try:
            log_settings = yaml.safe_load(config.log_config.read_text("utf-8"))
            logging.config.dictConfig(adapt_synapse_log_settings(log_settings))
        except (OSError, yaml.YAMLError, ValueError, TypeError) as error:
            raise ConfigError("log_config", f"cannot use {config.log_config}: {error}") from None
        _add_request_field()
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
