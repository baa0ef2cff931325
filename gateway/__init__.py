"""The Hit Gateway (DESIGN 12): the second system, from the job's hits to the desks that act on them.

One module a concept: :mod:`gateway.flow` (the dataflow), :mod:`gateway.cases`
(the case rules), :mod:`gateway.actions` (what a desk does, one encoding),
:mod:`gateway.board` (the boards the console shows), :mod:`gateway.console`
(the web console), :mod:`gateway.run` (``feblam gateway``),
:mod:`gateway.settings` and :mod:`gateway.metrics`. It uses the job's packages
(routing, Kafka sources and sinks, the service life cycle); none of them imports it.
"""

from __future__ import annotations

from feblam.lazy import lazy_api

__all__, __getattr__ = lazy_api(
    __name__,
    {
        "build_gateway_flow": "gateway.flow",
        "run_gateway": "gateway.run",
        "Board": "gateway.board",
        "BoardSink": "gateway.board",
        "BoardChange": "gateway.cases",
        "VehicleCases": "gateway.cases",
        "refusal": "gateway.cases",
        "DeskAction": "gateway.actions",
        "Desks": "gateway.settings",
        "Console": "gateway.console",
    },
)
