"""Benchmark row 16, the peer: what an analyst runs in pm4py on `flowctl export --format csv`.

    bench/.venv-peers/bin/python bench/peer_pm4py.py EVENTS.csv

Reads the event log, then computes what `flowctl report` shows of the same
log: per activity, how many times it was entered and its median, p90 and
maximum duration (each start paired with its complete in the same case,
through pm4py's lifecycle-to-interval conversion), and the directly-follows
frequencies (pm4py's DFG over the start events). Prints one JSON line with
the sizes, so the caller can check that work was done.
"""

from __future__ import annotations

import json
import sys
import warnings

warnings.simplefilter("ignore")

# It runs in bench/.venv-peers; the flowctl environment that type-checks it has no pm4py.
import pandas as pd  # type: ignore[import-untyped,import-not-found]  # noqa: E402
import pm4py  # type: ignore[import-not-found]  # noqa: E402
from pm4py.objects.log.util import interval_lifecycle  # type: ignore[import-not-found]  # noqa: E402
from pm4py.util import constants  # type: ignore[import-not-found]  # noqa: E402


def main(path: str) -> None:
    constants.SHOW_PROGRESS_BAR = False
    df = pd.read_csv(path, dtype={"result": "string"})
    df = pm4py.format_dataframe(df, case_id="case_id", activity_key="activity",
                                timestamp_key="timestamp")
    df = df.rename(columns={"lifecycle": "lifecycle:transition"})
    starts = df[df["lifecycle:transition"] == "start"]
    dfg, _, _ = pm4py.discover_dfg(starts)
    log = pm4py.convert_to_event_log(df)
    intervals = pm4py.convert_to_dataframe(interval_lifecycle.to_interval(log))
    intervals = intervals.dropna(subset=["start_timestamp"])
    seconds = (intervals["time:timestamp"] - intervals["start_timestamp"]).dt.total_seconds()
    per = seconds.groupby(intervals["concept:name"]).agg(
        ["count", "median", lambda s: s.quantile(0.9), "max"])
    print(json.dumps({"activities": len(per), "transitions": len(dfg),
                      "events": len(df)}))


if __name__ == "__main__":
    main(sys.argv[1])
