"""The agent as a Windows service (pywin32), hosted by python.exe: `python.exe -m agent.winservice`.

Windows only: `fieldpost-agent install` registers it with sc.exe (recovery actions restart it) and
nothing else imports this module. Its log goes to the Application event log, source fieldpost-agent.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import threading

import servicemanager
import win32service
import win32serviceutil

from agent.config import load_config
from agent.identity import IdentityError, load_identity
from agent.install import SERVICE
from agent.service import run

log = logging.getLogger(__name__)


class AgentService(win32serviceutil.ServiceFramework):
    """The service control manager's view of the agent: start runs it, stop sets its stop event."""

    _svc_name_ = SERVICE
    _svc_display_name_ = "fieldpost agent"
    _svc_description_ = "Reports this PC's health to the technician's collector"

    def __init__(self, args: list[str]) -> None:
        super().__init__(args)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False

    def SvcStop(self) -> None:
        """Stop requested (service manager thread): hand it to the agent's event loop."""
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)

    def SvcDoRun(self) -> None:
        """Run the agent until stopped; a failure ends the process with an error so recovery restarts it."""
        logging.basicConfig(level=logging.INFO, handlers=[logging.handlers.NTEventLogHandler(SERVICE)])
        try:
            asyncio.run(self._main())
        except IdentityError as exc:
            log.error("the agent cannot start: %s", exc)
            os._exit(1)
        except Exception:
            log.exception("the agent stopped on an error; the service's recovery actions restart it")
            # Leaving without SERVICE_STOPPED is a crash to the service manager, which then applies recovery.
            os._exit(1)

    async def _main(self) -> None:
        """Load configuration and identity, then run the agent until the stop event is set."""
        config = load_config()
        logging.getLogger().setLevel(config.agent.log_level)
        identity = load_identity(config.agent.state_dir)
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = asyncio.get_running_loop(), stop
            if self._stop_requested:
                stop.set()
        await run(config, identity, stop)


def main() -> None:
    """Entry point when the service manager starts `python.exe -m agent.winservice`."""
    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(AgentService)
    servicemanager.StartServiceCtrlDispatcher()


if __name__ == "__main__":
    main()
