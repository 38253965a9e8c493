"""`sinklab report`: a training run's report page (sinklab.report.training), with the last checkpoint measured."""
from __future__ import annotations

from pathlib import Path


def add_report(sub) -> None:
    p = sub.add_parser("report", help="plot Sink_1 and loss against step for a training run",
                       description="Write RUN/report.html: Sink_1 and loss against step, the measurements logged, "
                                   "and a link to the full measurement of the last checkpoint on the trainer's probe "
                                   "(RUN/final_measure/, measured here unless present for that step).")
    p.add_argument("run", help="training run folder (with metrics.jsonl)")
    p.add_argument("--no-measure", action="store_true", help="only the curves; do not measure the last checkpoint")
    p.set_defaults(func=cmd_report)


def cmd_report(args):
    print(f"report: {measure_and_report(args.run, measure_final=not args.no_measure)}")


def measure_and_report(run, measure_final: bool = True):
    """RUN/report.html. The report only reads the folder, so the last checkpoint's measurement it links
    (RUN/final_measure) is made first, here, unless present for that step."""
    from ..report import write_results
    from ..report.training import read_run_metrics, report_run
    from ..train.probe import measure_final_checkpoint

    rows = read_run_metrics(run)  # a folder that holds no run fails before any measuring
    if measure_final:
        measure_final_checkpoint(Path(run), write_results)
    return report_run(run, rows)
