"""Platform twins: a faithful stand-in of a platform, built from its specs, on loopback.

`PlatformTwin` (core) answers one request at a time, sans I/O; `start_twin` / `serve_twin`
(serve) mount it on the transport adapters. See docs/spec-language.md, "Twins".
"""

from engine.twin.core import PlatformTwin, TwinConfigError, TwinOptions, TwinRequest
from engine.twin.serve import RunningTwin, build_app, serve_twin, start_twin

__all__ = ["PlatformTwin", "RunningTwin", "TwinConfigError", "TwinOptions", "TwinRequest", "build_app", "serve_twin", "start_twin"]
